"""Periodic jobs, every one the shop runs. Each is a thin wrapper around one call, to a core service or to
a channel's payment ledger (reached through the ``Reconciler`` protocol, so no bot framework is imported
here); a failure is logged and the job runs again at its next tick (APScheduler keeps going)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.services import Services
from core.services.notices import NOTICE_ALERT_AFTER, NoticeOutcome

log = logging.getLogger(__name__)

EXPIRE_EVERY_SECONDS = 30
STALE_IMPORTS_EVERY_SECONDS = 300
PAYMENT_NOTICES_EVERY_SECONDS = 30
RECONCILE_EVERY_MINUTES = 5
SETTLE_EVERY_MINUTES = 60

# Told how a round of payment notices went: how many were processed now, and those still failing after
# NOTICE_ALERT_AFTER attempts (the channel wakes its sender and alerts the admins).
NoticeReport = Callable[[int, list[NoticeOutcome]], Awaitable[None]]


class Reconciler(Protocol):
    """A channel's payment ledger (Telegram's Stars ledger today): ``reconcile`` confirms every payment it
    holds that the shop has not recorded yet and returns how many were new."""

    async def reconcile(self) -> int: ...


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


async def settle_commissions(services: Services) -> int:
    """Commissions whose holding period ended move from pending to available."""
    n = await services.ledger.settle()
    if n:
        log.info("settled %d commissions", n)
    return n


async def reconcile_payments(reconciler: Reconciler) -> None:
    """Find payments the channel took but never reported (the process was down, an update was lost)."""
    try:
        await reconciler.reconcile()
    except asyncio.CancelledError:
        # Shutting down mid-run: nothing is half-done (each payment is its own transaction) and the next
        # start reconciles again from the stored cursor. Ending quietly keeps a clean stop clean.
        log.info("Stars reconciliation interrupted by shutdown")


def build_scheduler(
    services: Services,
    *,
    notice_report: NoticeReport | None = None,
    reconciler: Reconciler | None = None,
) -> AsyncIOScheduler:
    """A scheduler with every periodic job (the sweepers, and with a ``reconciler`` the payment ledger's
    reconciliation); the caller starts and shuts it down."""
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
    sched.add_job(
        settle_commissions, "interval", minutes=SETTLE_EVERY_MINUTES, id="settle_commissions", **common
    )
    if reconciler is not None:
        # Every 5 minutes, and once right after start: payments made while the shop was down are found.
        sched.add_job(
            reconcile_payments,
            "interval",
            args=[reconciler],
            minutes=RECONCILE_EVERY_MINUTES,
            id="reconcile_stars",
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
    return sched
