"""Every periodic job the shop runs, each a thin wrapper around one core call (or the channel's payment
ledger, reached through the ``Reconciler`` protocol, so no bot framework is imported here), declared in
``JOBS``. A failure is logged and recorded (``job_runs``); the job runs again at its next tick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.services.notices import NOTICE_ALERT_AFTER
from scheduler.slots import last_slot, payout_trigger, slot_name, summary_trigger
from scheduler.spec import Job, JobContext, Schedule

log = logging.getLogger(__name__)

EXPIRE_EVERY_SECONDS = 30
STALE_IMPORTS_EVERY_SECONDS = 300
PAYMENT_NOTICES_EVERY_SECONDS = 30
RECONCILE_EVERY_MINUTES = 5
SETTLE_EVERY_MINUTES = 60
STOCK_ALERTS_EVERY_MINUTES = 1
# A payout slot missed while the shop was down runs at start if it is at most this old. An older one is
# not run: the run only reminds (no money moves), what it would say the next slot says anyway, and a
# reminder days late would ask distributors for what they may have asked since.
PAYOUT_CATCH_UP = timedelta(hours=24)


def every(**interval: int) -> Callable[[Schedule], BaseTrigger]:
    """A trigger factory: every ``interval`` (``seconds=30``, ``minutes=5``)."""

    def trigger(schedule: Schedule) -> BaseTrigger:
        return IntervalTrigger(timezone=schedule.timezone, **interval)

    return trigger


async def expire_reservations(ctx: JobContext) -> int:
    """Pending orders past their TTL become expired; their keys return to stock."""
    n = await ctx.services.orders.expire_due()
    if n:
        log.info("expired %d unpaid orders", n)
    return n


async def until_shutdown(work: Awaitable[int], what: str) -> int:
    """``work``'s result, or 0 when shutdown cuts it short: APScheduler's executor cancels the jobs still
    running when the scheduler shuts down, and would log that as a failure. Nothing is half-done (a job's
    work is whole transactions) and the next start does what is left, so a clean stop stays quiet. A job
    that runs at start is the likeliest to be running at an early stop."""
    try:
        return await work
    except asyncio.CancelledError:
        log.info("%s interrupted by shutdown", what)
        return 0


async def clear_abandoned_imports(ctx: JobContext) -> int:
    """Remove keys staged by imports whose process died."""
    n = await until_shutdown(ctx.services.stock.abandon_stale_imports(), "clearing abandoned imports")
    if n:
        log.warning("removed the staged keys of %d abandoned imports", n)
    return n


async def process_payment_notices(ctx: JobContext) -> int:
    """Retry payment notices whose processing failed before. Returns how many went through now."""
    outcomes = await ctx.services.payments.process_due_notices()
    done = sum(o.ok for o in outcomes)
    stuck = [o for o in outcomes if not o.ok and o.attempts >= NOTICE_ALERT_AFTER]
    if done:
        log.info("processed %d payment notices on retry", done)
    if stuck:
        log.error("%d payment notices still failing: %s", len(stuck), [o.charge_id for o in stuck])
    if ctx.notice_report is not None and (done or stuck):
        await ctx.notice_report(done, stuck)
    return done


async def settle_commissions(ctx: JobContext) -> int:
    """Commissions whose holding period ended move from pending to available."""
    n = await ctx.services.ledger.settle()
    if n:
        log.info("settled %d commissions", n)
    return n


async def reconcile_payments(ctx: JobContext) -> int:
    """Find payments the channel took but never reported (the process was down, an update was lost)."""
    assert ctx.reconciler is not None  # the job is scheduled only with one (Job.needs)
    try:
        return await ctx.reconciler.reconcile()
    except asyncio.CancelledError:
        # Shutting down mid-run: nothing is half-done (each payment is its own transaction) and the next
        # start reconciles again from the stored cursor. Ending quietly keeps a clean stop clean.
        log.info("Stars reconciliation interrupted by shutdown")
        return 0


async def payout_run(ctx: JobContext) -> int:
    """The payout run of the last ``PAYOUT_SCHEDULE`` slot, if it came within ``PAYOUT_CATCH_UP`` and has
    not run: distributors who can withdraw are told how, the admins who pay are told what waits."""
    now = ctx.services.ctx.clock.now()
    slot = last_slot(payout_trigger(ctx.schedule), now, PAYOUT_CATCH_UP)
    if slot is None:
        log.info("no payout slot in the last %s: nothing to run", PAYOUT_CATCH_UP)
        return 0
    name = slot_name(slot)

    async def run() -> int:
        return (await ctx.services.payout_run.run(name)).messages

    return await until_shutdown(run(), f"the payout run of {name}")


async def stock_alerts(ctx: JobContext) -> int:
    """Alert the stock admins about products that went low or ran out; re-arm those restocked."""
    return await ctx.services.stock_alerts.check()


async def daily_summary(ctx: JobContext) -> int:
    """Yesterday's summary to the owners and report admins, once, from ``SUMMARY_TIME`` on."""
    summary = ctx.services.daily_summary.send_due(ctx.schedule.summary_time)
    return await until_shutdown(summary, "the daily summary")


JOBS: list[Job] = [
    Job(
        "process_payment_notices",
        process_payment_notices,
        every(seconds=PAYMENT_NOTICES_EVERY_SECONDS),
        "retry payment notices whose processing failed",
    ),
    Job(
        "expire_reservations",
        expire_reservations,
        every(seconds=EXPIRE_EVERY_SECONDS),
        "unpaid orders past their reservation return their keys to stock",
    ),
    Job(
        "clear_abandoned_imports",
        clear_abandoned_imports,
        every(seconds=STALE_IMPORTS_EVERY_SECONDS),
        "remove keys staged by imports whose process died",
        at_start=True,
    ),
    Job(
        "settle_commissions",
        settle_commissions,
        every(minutes=SETTLE_EVERY_MINUTES),
        "commissions past the holding period become available",
    ),
    Job(
        "reconcile_stars",
        reconcile_payments,
        every(minutes=RECONCILE_EVERY_MINUTES),
        "confirm Stars payments the bot never heard about",
        needs="reconciler",
        at_start=True,
    ),
    Job(
        "payout_run",
        payout_run,
        payout_trigger,
        "tell distributors who can withdraw, and the admins the payout queue (PAYOUT_SCHEDULE)",
        at_start=True,  # a slot missed within PAYOUT_CATCH_UP
    ),
    Job(
        "stock_alerts",
        stock_alerts,
        every(minutes=STOCK_ALERTS_EVERY_MINUTES),
        "alert the stock admins once when a product goes low or runs out",
    ),
    Job(
        "daily_summary",
        daily_summary,
        summary_trigger,
        "yesterday's figures and chart to the owners and report admins (SUMMARY_TIME)",
        at_start=True,  # yesterday's, if SUMMARY_TIME passed today and it was not sent
    ),
]
