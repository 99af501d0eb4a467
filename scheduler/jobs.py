"""Periodic jobs. Each is a thin wrapper around one core service call; a failure is logged and the job
runs again at its next tick (APScheduler keeps going)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.services import Services
from core.services.payments import NOTICE_ALERT_AFTER, NoticeOutcome

log = logging.getLogger(__name__)

EXPIRE_EVERY_SECONDS = 30
STALE_IMPORTS_EVERY_SECONDS = 300
PAYMENT_NOTICES_EVERY_SECONDS = 30

# Told how a round of payment notices went: how many were processed now, and those still failing after
# NOTICE_ALERT_AFTER attempts (the channel wakes its sender and alerts the admins).
NoticeReport = Callable[[int, list[NoticeOutcome]], Awaitable[None]]


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


async def process_payment_notices(services: Services, report: NoticeReport | None = None) -> int:
    """Retry payment notices whose processing failed before. Returns how many went through now."""
    outcomes = await services.payments.process_due_notices()
    done = sum(o.ok for o in outcomes)
    stuck = [o for o in outcomes if not o.ok and o.attempts >= NOTICE_ALERT_AFTER]
    if done:
        log.info("processed %d payment notices on retry", done)
    if stuck:
        log.error("%d payment notices still failing: %s", len(stuck), [o.charge_id for o in stuck])
    if report is not None and (done or stuck):
        await report(done, stuck)
    return done


def build_scheduler(services: Services, *, notice_report: NoticeReport | None = None) -> AsyncIOScheduler:
    """A scheduler with every sweeper job; the caller starts and shuts it down."""
    sched = AsyncIOScheduler(timezone="UTC")
    common = {"args": [services], "coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
    sched.add_job(
        process_payment_notices,
        "interval",
        seconds=PAYMENT_NOTICES_EVERY_SECONDS,
        id="process_payment_notices",
        kwargs={"report": notice_report},
        **common,
    )
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
