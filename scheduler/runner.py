"""The scheduler: APScheduler 3's ``AsyncIOScheduler`` running every job of ``JOBS`` in this process.

APScheduler keeps nothing here but the ticks (its in-memory job store): the work a job finds is in the
shop's tables and each job claims it atomically, so any number of schedulers may run against one database
(one per bot process, or ``keyshop scheduler`` alone). Each job runs one at a time per process
(``max_instances=1``), and runs missed while the process was busy or down are coalesced into one
(``coalesce``; a job marked ``at_start`` also runs once right after start, for work missed while it was
down). Every run is recorded in ``job_runs`` (``keyshop jobs list``, ``/metrics``); a failing job logs one
line when it starts failing and one when it recovers, not one per tick. Jobs failing because the database
is away are the database's outage, logged once for all of them (``JobContext.database``)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.resilience import is_db_outage
from scheduler.jobs import JOBS
from scheduler.spec import NEEDS, Job, JobContext

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 60


class UnknownJob(LookupError):
    """``keyshop jobs run NAME`` with a name no job has, or a job this process cannot run."""


def scheduled(ctx: JobContext) -> list[Job]:
    """The jobs this context can run (a job needing a reconciler is left out without one)."""
    return [j for j in JOBS if j.needs is None or getattr(ctx, j.needs) is not None]


def find(name: str, ctx: JobContext) -> Job:
    for job in JOBS:
        if job.name == name:
            if job.needs is not None and getattr(ctx, job.needs) is None:
                raise UnknownJob(f"job {name} needs a {job.needs} (set {NEEDS[job.needs]})")
            return job
    raise UnknownJob(f"no job named {name!r}; `keyshop jobs list` shows them")


class Runs:
    """Runs jobs and records each run; remembers which jobs are failing, to log only state changes."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.failing: set[str] = set()

    async def run(self, job: Job) -> int | None:
        """Run ``job`` once; its count, or None when it failed (logged and recorded, never raised: the
        scheduler runs it again at its next tick)."""
        try:
            return await self._run(job)
        except asyncio.CancelledError:
            # Stopped mid-run (shutdown): each job's steps are their own transactions, so nothing is
            # half-done, and its next run (in this process or another) picks up what is left. Ending quietly
            # keeps a clean stop clean (the scheduler would report a cancelled job as an error).
            log.info("job %s interrupted by shutdown", job.name)
            return None

    async def _run(self, job: Job) -> int | None:
        jobs = self.ctx.services.jobs
        try:
            await _quiet(jobs.started(job.name))
            result = await job.run(self.ctx)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            if is_db_outage(e):
                self.ctx.database.failed(e)  # every job fails alike: one line for all, not one per job
            elif job.name not in self.failing:
                self.failing.add(job.name)
                log.error(
                    "job %s failed (%s); it runs again at its next tick", job.name, error, exc_info=True
                )
            await _quiet(jobs.finished(job.name, ok=False, error=error))
            return None
        self.ctx.database.ok()
        if job.name in self.failing:
            self.failing.discard(job.name)
            log.warning("job %s runs again", job.name)
        await _quiet(jobs.finished(job.name, ok=True, result=result))
        return result


async def _quiet(step: Any) -> None:
    """Bookkeeping never fails a job: with the database down the job itself fails and says so."""
    try:
        await step
    except asyncio.CancelledError:
        raise
    except Exception:
        log.debug("could not record a job run", exc_info=True)


def build_scheduler(ctx: JobContext) -> AsyncIOScheduler:
    """A scheduler with every job ``ctx`` can run; the caller starts and shuts it down."""
    sched = AsyncIOScheduler(timezone=ctx.schedule.timezone)
    runs = Runs(ctx)
    now = datetime.now(UTC)
    for job in scheduled(ctx):
        sched.add_job(
            runs.run,
            job.trigger(ctx.schedule),
            args=[job],
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            **({"next_run_time": now} if job.at_start else {}),
        )
    return sched
