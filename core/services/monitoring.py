"""What monitoring reads from the shop at each scrape or health check: one trivial query to see that the
database answers, and the shop's figures (orders by status, the outbox's backlog, the scheduler's record of
its jobs) in one read-only transaction. Counts and states only: never a key, a user or a text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from core.context import Context, UnitOfWork
from core.repositories.jobs import JobRun


@dataclass(frozen=True, slots=True)
class ShopFigures:
    orders_by_status: dict[str, int]
    outbox_pending: int
    outbox_oldest_due_seconds: float  # how long the longest-waiting due message has waited; 0: none due
    jobs: list[JobRun]


class MonitoringService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def ping(self) -> None:
        """Raises unless the database answers a trivial query (on a reader: never behind the writer)."""
        await self.ctx.db.read(_select_one)

    async def figures(self) -> ShopFigures:
        return await self.ctx.read(_figures, self.ctx.clock.now())


def _select_one(conn: Connection) -> None:
    conn.execute(text("SELECT 1")).scalar_one()


def _figures(uow: UnitOfWork, now: datetime) -> ShopFigures:
    repo = uow.repo
    backlog = repo.monitoring.outbox_backlog(now)
    oldest = backlog.oldest_due_at
    return ShopFigures(
        orders_by_status=repo.monitoring.orders_by_status(),
        outbox_pending=backlog.pending,
        outbox_oldest_due_seconds=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        jobs=repo.jobs.all(),
    )
