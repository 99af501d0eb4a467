"""The scheduler's record of its runs (``job_runs``), one short transaction at a run's start and end."""

from __future__ import annotations

from datetime import datetime

from core.context import Context
from core.repositories.jobs import JobRun
from core.uow import UnitOfWork


class JobRunService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def started(self, name: str) -> None:
        await self.ctx.write(_started, name, self.ctx.clock.now())

    async def finished(
        self, name: str, *, ok: bool, result: int | None = None, error: str | None = None
    ) -> None:
        await self.ctx.write(_finished, name, self.ctx.clock.now(), ok, result, error)

    async def runs(self) -> list[JobRun]:
        """Every job that ran at least once, by name."""
        return await self.ctx.read(_runs)


def _started(uow: UnitOfWork, name: str, now: datetime) -> None:
    uow.repo.jobs.started(name, now)
    uow.commit()


def _finished(
    uow: UnitOfWork, name: str, now: datetime, ok: bool, result: int | None, error: str | None
) -> None:
    uow.repo.jobs.finished(name, now, ok=ok, result=result, error=error)
    uow.commit()


def _runs(uow: UnitOfWork) -> list[JobRun]:
    return uow.repo.jobs.all()
