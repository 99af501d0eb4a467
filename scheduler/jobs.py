"""Every periodic job the shop runs, each a thin wrapper around one core call (or the channel's payment
ledger, reached through the ``Reconciler`` protocol, so no bot framework is imported here), declared in
``JOBS``. A failure is logged and recorded (``job_runs``); the job runs again at its next tick."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
REMIND_MEMBERSHIPS_EVERY_SECONDS = 60
REMIND_INVOICES_EVERY_SECONDS = 30
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


async def clear_abandoned_imports(ctx: JobContext) -> int:
    """Remove keys staged by imports whose process died."""
    n = await ctx.services.stock.abandon_stale_imports()
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


async def remind_memberships(ctx: JobContext) -> int:
    """Membership reminders due now (REMINDER_DAYS before the end, then the expired notice), each stage
    once per order; after downtime only the latest stage due."""
    n = await ctx.services.reminders.remind_memberships()
    if n:
        log.info("queued %d membership reminders", n)
    return n


async def remind_invoices(ctx: JobContext) -> int:
    """Invoice reminders for unpaid orders whose reservation runs out within INVOICE_REMINDER_MINUTES."""
    n = await ctx.services.reminders.remind_invoices()
    if n:
        log.info("queued %d invoice reminders", n)
    return n


async def reconcile_wechatpay(ctx: JobContext) -> int:
    """WeChat Pay's notifies are retried for a day but not guaranteed: ask about what it has open."""
    assert ctx.wechatpay is not None  # scheduled only with WeChat Pay (Job.needs)
    return await ctx.wechatpay.run()


async def reconcile_payments(ctx: JobContext) -> int:
    """Find payments the channel took but never reported (the process was down, an update was lost)."""
    assert ctx.reconciler is not None  # the job is scheduled only with one (Job.needs)
    # Stopped mid-run, nothing is half-done (each payment is its own transaction): the next start
    # reconciles again from the stored cursor (scheduler.runner ends an interrupted job quietly).
    return await ctx.reconciler.reconcile()


async def purge_sent_messages(ctx: JobContext) -> int:
    """Sent outbox rows older than OUTBOX_RETENTION_DAYS are deleted (0: kept for ever)."""
    days = ctx.schedule.outbox_retention_days
    if days <= 0:
        return 0
    n = await ctx.services.outbox.purge_sent(timedelta(days=days))
    if n:
        log.info("deleted %d sent outbox messages older than %d days", n, days)
    return n


async def forget_wechat_pushes(ctx: JobContext) -> int:
    """WeChat pushes remembered for their dedupe (``wechat_inbound``) are forgotten a day later: WeChat
    retries a push within seconds, never a day on."""
    return await ctx.services.wechat_inbound.forget()


async def payout_run(ctx: JobContext) -> int:
    """The payout run of the last ``PAYOUT_SCHEDULE`` slot, if it came within ``PAYOUT_CATCH_UP`` and has
    not run: distributors who can withdraw are told how, the admins who pay are told what waits."""
    now = ctx.services.ctx.clock.now()
    slot = last_slot(payout_trigger(ctx.schedule), now, PAYOUT_CATCH_UP)
    if slot is None:
        log.info("no payout slot in the last %s: nothing to run", PAYOUT_CATCH_UP)
        return 0
    return (await ctx.services.payout_run.run(slot_name(slot))).messages


async def stock_alerts(ctx: JobContext) -> int:
    """Alert the stock admins about products that went low or ran out; re-arm those restocked."""
    return await ctx.services.stock_alerts.check()


async def daily_summary(ctx: JobContext) -> int:
    """Yesterday's summary to the owners and report admins, once, from ``SUMMARY_TIME`` on."""
    return await ctx.services.daily_summary.send_due(ctx.schedule.summary_time)


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
        "remind_memberships",
        remind_memberships,
        every(seconds=REMIND_MEMBERSHIPS_EVERY_SECONDS),
        "remind buyers before their membership ends, and once it has (REMINDER_DAYS)",
        at_start=True,
    ),
    Job(
        "remind_invoices",
        remind_invoices,
        every(seconds=REMIND_INVOICES_EVERY_SECONDS),
        "remind buyers whose unpaid order's reservation runs out soon (INVOICE_REMINDER_MINUTES)",
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
        "reconcile_wechatpay",
        reconcile_wechatpay,
        every(minutes=1),
        "ask WeChat Pay about open orders (lost notifies), close expired ones, settle refunds",
        needs="wechatpay",
        at_start=True,
    ),
    Job(
        "purge_sent_messages",
        purge_sent_messages,
        every(hours=6),
        "delete sent outbox messages older than OUTBOX_RETENTION_DAYS",
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
        at_start=True,  # what went low while the shop was down
    ),
    Job(
        "daily_summary",
        daily_summary,
        summary_trigger,
        "yesterday's figures and chart to the owners and report admins (SUMMARY_TIME)",
        at_start=True,  # yesterday's, if SUMMARY_TIME passed today and it was not sent
    ),
    Job(
        "forget_wechat_pushes",
        forget_wechat_pushes,
        every(hours=6),
        "forget WeChat pushes kept for their dedupe, a day after they came",
    ),
]
