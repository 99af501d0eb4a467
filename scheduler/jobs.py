"""Periodic jobs. Each is a thin wrapper around one core service call; a failure is logged and the job
runs again at its next tick (APScheduler keeps going)."""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.services import Services

log = logging.getLogger(__name__)

EXPIRE_EVERY_SECONDS = 30
STALE_IMPORTS_EVERY_SECONDS = 300


async def expire_reservations(services: Services) -> int:
    """Pending orders past their TTL become expired; their keys return to stock."""
    n = await services.orders.expire_due()
    if n:
        log.info("expired %d unpaid orders", n)
    return n


async def clear_abandoned_imports(services: Services) -> int:
    """Remove keys staged by imports whose process died."""
    n = await services.stock.abandon_stale_imports()
    if n:
        log.warning("removed the staged keys of %d abandoned imports", n)
    return n


def build_scheduler(services: Services) -> AsyncIOScheduler:
    """A scheduler with every sweeper job; the caller starts and shuts it down."""
    sched = AsyncIOScheduler(timezone="UTC")
    common = {"args": [services], "coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
    sched.add_job(
        expire_reservations, "interval", seconds=EXPIRE_EVERY_SECONDS, id="expire_reservations", **common
    )
    sched.add_job(
        clear_abandoned_imports,
        "interval",
        seconds=STALE_IMPORTS_EVERY_SECONDS,
        id="clear_abandoned_imports",
        **common,
    )
    return sched
