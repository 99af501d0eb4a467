"""The scheduler: APScheduler 3's ``AsyncIOScheduler`` running every job of ``JOBS`` in this process.

APScheduler keeps nothing here but the ticks (its in-memory job store): the work a job finds is in the
shop's tables and each job claims it atomically, so any number of schedulers may run against one database.
Each job runs one at a time per process (``max_instances=1``), and runs missed while the process was busy
or down are coalesced into one (``coalesce``)."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.jobs import JOBS
from scheduler.spec import Job, JobContext

log = logging.getLogger(__name__)


def scheduled(ctx: JobContext) -> list[Job]:
    """The jobs this context can run (a job needing a reconciler is left out without one)."""
    return [j for j in JOBS if j.needs is None or getattr(ctx, j.needs) is not None]


def build_scheduler(ctx: JobContext) -> AsyncIOScheduler:
    """A scheduler with every job ``ctx`` can run; the caller starts and shuts it down."""
    sched = AsyncIOScheduler(timezone=ctx.schedule.timezone)
    for job in scheduled(ctx):
        extra = {}
        if job.at_start:
            from datetime import UTC, datetime

            extra["next_run_time"] = datetime.now(UTC)
        sched.add_job(
            job.run,
            job.trigger(ctx.schedule),
            args=[ctx],
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=60,
            **extra,
        )
    return sched
