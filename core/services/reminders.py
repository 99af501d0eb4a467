"""Reminders: a membership's end coming (``REMINDER_DAYS`` before it, then once it has ended) and an unpaid
order's reservation running out (``INVOICE_REMINDER_MINUTES`` before). The scheduler's jobs call
``remind_memberships`` and ``remind_invoices``; a channel's deliverer reads what it shows with
``membership`` and ``open_invoice``.

**Once.** A stage is sent once per order, whatever number of schedulers run against one database: its
``reminders`` row (primary key: order and stage) is inserted in the transaction that writes the outbox
message, and only the transaction whose insert went through writes it. The orders are claimed first
(``FOR NO KEY UPDATE SKIP LOCKED`` on PostgreSQL, so twin schedulers take different orders; SQLite's write
transactions run one at a time), in batches of ``BATCH`` orders per transaction.

**The stages of a membership** (``membership_stages``), in time order: ``d<N>`` for each N of
``REMINDER_DAYS``, due N days before the membership ends, and ``expired``, due when it has ended. A run
sends each order the latest stage due, only: the earlier ones passed while no scheduler ran (downtime) and
are recorded as skipped, never sent in a burst. A stage due before the order was delivered (a 2-day code
and its "3 days left") is recorded as skipped too. An order reminded at a stage closer to its end (under
an earlier ``REMINDER_DAYS``) is past every stage due before that one: never reminded backwards.

**Who is not reminded.** Orders no longer delivered (refunded), buyers who renewed (a later delivered order
of the same product whose membership ends later), memberships that ended more than ``STALE_AFTER`` ago:
none of them is even a candidate. Buyers who blocked the bot or are blocklisted: the stage is recorded as
skipped, so it is not retried."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.context import Context, ShopConfig, UnitOfWork
from core.messages import InvoiceReminder, MembershipReminder, Message, check_writable
from core.repositories.reminders import DueReminder, Membership, OpenInvoice, ReminderRow

BATCH = 500  # orders per transaction: short write locks on SQLite, 10,000 due reminders in 20 trips
EXPIRED = "expired"
INVOICE = "invoice"
# A membership that ended longer ago than this gets no reminder at all, not even the expired notice. Such
# an order reaches a run only after a long stop (or when the shop first runs with reminders, holding years
# of sales): an "it has ended" about something that ended weeks ago is spam, not service. These orders are
# left out of the scan itself rather than recorded as skipped, so a run reads memberships ending around now
# (an index range), not every membership ever sold.
STALE_AFTER = timedelta(days=7)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Stage:
    """A membership reminder stage: its name (stored in ``reminders.stage``) and how long before the
    membership's end it is due (zero: once it has ended)."""

    name: str
    before: timedelta


def membership_stages(days: Sequence[int]) -> tuple[Stage, ...]:
    """The stages for ``REMINDER_DAYS``, in the order they come due: ``d3``, ``d1``, ``expired`` for
    ``(3, 1)``. None at all when no days are set (membership reminders off)."""
    if not days:
        return ()
    ahead = tuple(Stage(f"d{d}", d * DAY) for d in sorted(set(days), reverse=True))
    return (*ahead, Stage(EXPIRED, timedelta()))


def days_left(ends_at: datetime, now: datetime) -> int:
    """Whole days until ``ends_at``, a part of a day counted as one (0 once it has passed): what a buyer
    is told at whatever moment the reminder goes out."""
    left = ends_at - now
    return math.ceil(left / DAY) if left > timedelta() else 0


def invoice_reminders_on(config: ShopConfig) -> bool:
    """Invoice reminders are sent only with a lead time shorter than the reservation itself: one as long
    would come the moment the invoice is sent."""
    return timedelta() < config.invoice_reminder < config.reservation_ttl


def _sendable(d: DueReminder, stage: Stage) -> bool:
    """Whether the stage due for ``d`` is sent (else recorded as skipped): a buyer who blocked the bot or
    is blocklisted gets none, and a stage due before the order was delivered is no news."""
    if d.bot_blocked or d.blocklisted:
        return False
    if d.ends_at is not None and d.delivered_at is not None:
        return d.ends_at - stage.before > d.delivered_at
    return True


class ReminderService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def stages(self) -> tuple[Stage, ...]:
        return membership_stages(self.ctx.config.reminder_days)

    async def remind_memberships(self, *, batch: int = BATCH) -> int:
        """Write each membership reminder due now to the outbox, once per order and stage (see the module's
        rules). Returns how many were written. Safe to run in several processes at once."""
        now = self.ctx.clock.now()
        stages = self.stages
        sent = 0
        for i in range(len(stages)):
            while True:
                claimed, written = await self.ctx.write(_membership_batch, stages, i, now, batch)
                sent += written
                if claimed < batch:
                    break
        return sent

    async def remind_invoices(self, *, batch: int = BATCH) -> int:
        """Write an invoice reminder for each pending order whose reservation runs out within
        ``INVOICE_REMINDER_MINUTES``, once per order. Returns how many were written."""
        config = self.ctx.config
        if not invoice_reminders_on(config):
            return 0
        now = self.ctx.clock.now()
        sent = 0
        while True:
            claimed, written = await self.ctx.write(_invoice_batch, now, now + config.invoice_reminder, batch)
            sent += written
            if claimed < batch:
                return sent

    async def membership(self, order_ref: str, *, user_id: int) -> Membership | None:
        """What a membership reminder shows for ``user_id``'s order; None when there is nothing to remind
        of any more: the order is not theirs, was refunded, or they renewed since the reminder was
        written."""
        m = await self.ctx.read(_membership, order_ref)
        if m is None or m.user_id != user_id or m.renewed:
            return None
        return m

    async def open_invoice(self, order_ref: str, *, user_id: int) -> OpenInvoice | None:
        """What an invoice reminder shows for ``user_id``'s order; None when it no longer waits for payment
        (paid, cancelled, expired) or is not theirs."""
        inv = await self.ctx.read(_open_invoice, order_ref, self.ctx.clock.now())
        return inv if inv is not None and inv.user_id == user_id else None


def _membership_batch(
    uow: UnitOfWork, stages: tuple[Stage, ...], i: int, now: datetime, limit: int
) -> tuple[int, int]:
    """One batch of orders for which stage ``i`` is the latest due: their membership ends after the next
    stage's moment and no later than this one's (for ``expired``: within ``STALE_AFTER`` ago). Returns how
    many orders were claimed and how many reminders written."""
    r = uow.repo
    stage = stages[i]
    ends_after = now + stages[i + 1].before if i + 1 < len(stages) else now - STALE_AFTER
    due = r.reminders.due_memberships(ends_after, now + stage.before, _this_or_later(stage), limit)
    rows: list[ReminderRow] = []
    for d in due:
        rows += [ReminderRow(d.order_id, s.name, True) for s in stages[:i]]  # passed unsent: never sent
        rows.append(ReminderRow(d.order_id, stage.name, not _sendable(d, stage)))
    sent = {x.order_id for x in r.reminders.record(rows, now) if x.stage == stage.name and not x.skipped}
    reminders = [(d.user_id, MembershipReminder(d.order_ref, stage.name)) for d in due if d.order_id in sent]
    _write(uow, reminders, now)
    uow.commit()
    return len(due), len(sent)


def _this_or_later(stage: Stage) -> list[str]:
    """The names of every stage due no earlier than ``stage``, under any ``REMINDER_DAYS``: an order with
    one of them recorded is past ``stage``. Not only this run's stages: a buyer told "last day" (``d1``)
    before the owner changed ``3,1`` to ``2`` is not told it again as ``d2``."""
    days = round(stage.before / DAY)
    return [f"d{d}" for d in range(1, days + 1)] + [EXPIRED]


def _invoice_batch(uow: UnitOfWork, now: datetime, until: datetime, limit: int) -> tuple[int, int]:
    r = uow.repo
    due = r.reminders.due_invoices(now, until, INVOICE, limit)
    rows = [ReminderRow(d.order_id, INVOICE, d.bot_blocked or d.blocklisted) for d in due]
    to_send = {x.order_id for x in r.reminders.record(rows, now) if not x.skipped}
    _write(uow, [(d.user_id, InvoiceReminder(d.order_ref)) for d in due if d.order_id in to_send], now)
    uow.commit()
    return len(due), len(to_send)


def _write(uow: UnitOfWork, messages: Sequence[tuple[int, Message]], now: datetime) -> None:
    """Queue each ``(user_id, message)`` in the outbox, in this transaction, in one trip to the database
    (``core.reactions.write_message``, a batch at a time)."""
    uow.repo.outbox.add_many([(uid, m.KIND, check_writable(m)) for uid, m in messages], now)


def _membership(uow: UnitOfWork, order_ref: str) -> Membership | None:
    return uow.repo.reminders.membership(order_ref[:128])


def _open_invoice(uow: UnitOfWork, order_ref: str, now: datetime) -> OpenInvoice | None:
    return uow.repo.reminders.open_invoice(order_ref[:128], now)
