"""Reminders: the orders a reminder is due for, claimed for one transaction, and the per-order, per-stage
rows that make each reminder happen once (``reminders``: primary key ``(order_id, stage)``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, bindparam, exists, select

from core import tables as t
from core.models import OrderStatus
from core.repositories._rows import dialect_insert
from core.sql import Prebuilt, run

_o, _u, _p, _r = t.orders, t.users, t.products, t.reminders
_newer = _o.alias("newer")


def _renewed() -> ColumnElement[bool]:
    """The order's buyer holds a delivered order of the same product whose membership ends later (they
    renewed): the old order is reminded of no more."""
    return exists().where(
        _newer.c.user_id == _o.c.user_id,
        _newer.c.product_id == _o.c.product_id,
        _newer.c.status == OrderStatus.DELIVERED.value,
        _newer.c.membership_expires_at > _o.c.membership_expires_at,
    )


@dataclass(frozen=True, slots=True)
class DueReminder:
    """An order a reminder stage is due for, claimed by this transaction, with what decides whether it is
    sent: whether its buyer can be written to, and when the order was delivered and its membership ends
    (None for an invoice)."""

    order_id: int
    order_ref: str
    user_id: int
    bot_blocked: bool
    blocklisted: bool
    delivered_at: datetime | None
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReminderRow:
    """One stage of one order's reminders, sent or (``skipped``) recorded as not to be sent."""

    order_id: int
    stage: str
    skipped: bool


@dataclass(frozen=True, slots=True)
class Membership:
    """A delivered membership order as its reminder shows it: what to renew, and when it ends."""

    order_ref: str
    user_id: int
    product_id: int
    product_name: str
    quantity: int
    currency: str
    ends_at: datetime
    renewed: bool


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """A pending order as its invoice reminder shows it."""

    order_ref: str
    user_id: int
    product_name: str
    quantity: int
    amount: int
    currency: str
    expires_at: datetime


class ReminderRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def due_memberships(
        self, ends_after: datetime, ends_upto: datetime, stages: Sequence[str], limit: int
    ) -> list[DueReminder]:
        """Up to ``limit`` delivered orders whose membership ends in ``(ends_after, ends_upto]`` and that
        have none of ``stages`` recorded (the stage due now and every later one), soonest end first; not
        renewed. Claimed: on PostgreSQL locked for this transaction and skipped when another holds them
        (a twin scheduler claims those), ``NO KEY UPDATE`` so that rows referring to the order (a payment,
        the reminder row itself) are not held up."""
        q = (
            select(
                _o.c.id,
                _o.c.ref,
                _o.c.user_id,
                _u.c.bot_blocked,
                _u.c.blocklisted,
                _o.c.delivered_at,
                _o.c.membership_expires_at,
            )
            .join_from(_o, _u, _u.c.id == _o.c.user_id)
            .where(
                _o.c.membership_expires_at > ends_after,
                _o.c.membership_expires_at <= ends_upto,
                _o.c.status == OrderStatus.DELIVERED.value,
                ~exists().where(_r.c.order_id == _o.c.id, _r.c.stage.in_(list(stages))),
                ~_renewed(),
            )
            .order_by(_o.c.membership_expires_at, _o.c.id)
            .limit(limit)
            .with_for_update(of=_o, skip_locked=True, key_share=True)
        )
        return [DueReminder(*r) for r in self.conn.execute(q).all()]

    def due_invoices(self, now: datetime, until: datetime, stage: str, limit: int) -> list[DueReminder]:
        """Up to ``limit`` pending orders whose reservation runs out in ``(now, until]`` and that have no
        ``stage`` row yet, soonest first; claimed as ``due_memberships`` claims."""
        q = (
            select(_o.c.id, _o.c.ref, _o.c.user_id, _u.c.bot_blocked, _u.c.blocklisted)
            .join_from(_o, _u, _u.c.id == _o.c.user_id)
            .where(
                _o.c.status == OrderStatus.PENDING.value,
                _o.c.expires_at > now,
                _o.c.expires_at <= until,
                ~exists().where(_r.c.order_id == _o.c.id, _r.c.stage == stage),
            )
            .order_by(_o.c.expires_at, _o.c.id)
            .limit(limit)
            .with_for_update(of=_o, skip_locked=True, key_share=True)
        )
        rows = self.conn.execute(q).all()
        return [DueReminder(o, ref, u, blocked, listed, None, None) for o, ref, u, blocked, listed in rows]

    def record(self, rows: Sequence[ReminderRow], now: datetime) -> list[ReminderRow]:
        """Insert ``rows``, each only if its order has no row for its stage yet. Returns those this call
        inserted: a stage is this transaction's to send only if its row is among them, whatever another
        scheduler did meanwhile (its row, committed or not, makes ours a no-op)."""
        if not rows:
            return []
        values = [
            {"order_id": x.order_id, "stage": x.stage, "skipped": x.skipped, "created_at": now} for x in rows
        ]
        q = (
            dialect_insert(self.dialect, _r)
            .values(values)
            .on_conflict_do_nothing(index_elements=[_r.c.order_id, _r.c.stage])
            .returning(_r.c.order_id, _r.c.stage, _r.c.skipped)
        )
        return [ReminderRow(int(o), str(s), bool(k)) for o, s, k in self.conn.execute(q).all()]

    def for_orders(self, order_ids: Sequence[int]) -> list[ReminderRow]:
        """Every stage recorded for ``order_ids``, by order and stage."""
        if not order_ids:
            return []
        q = (
            select(_r.c.order_id, _r.c.stage, _r.c.skipped)
            .where(_r.c.order_id.in_(list(order_ids)))
            .order_by(_r.c.order_id, _r.c.stage)
        )
        return [ReminderRow(int(o), str(s), bool(k)) for o, s, k in self.conn.execute(q).all()]

    _Q_MEMBERSHIP = Prebuilt(
        select(
            _o.c.ref,
            _o.c.user_id,
            _o.c.product_id,
            _p.c.name,
            _o.c.quantity,
            _o.c.currency,
            _o.c.membership_expires_at,
            _renewed(),
        )
        .join_from(_o, _p, _p.c.id == _o.c.product_id)
        .where(
            _o.c.ref == bindparam("b_ref"),
            _o.c.status == OrderStatus.DELIVERED.value,
            _o.c.membership_expires_at.is_not(None),
        )
    )

    def membership(self, order_ref: str) -> Membership | None:
        """The delivered membership order ``order_ref`` (None: no such order, not delivered any more, or
        no end date)."""
        r = run(self.conn, self._Q_MEMBERSHIP, {"b_ref": order_ref}).first()
        if r is None:
            return None
        ref, user_id, product_id, name, quantity, currency, ends_at, renewed = r
        return Membership(ref, user_id, product_id, name, quantity, currency, ends_at, bool(renewed))

    _Q_INVOICE = Prebuilt(
        select(_o.c.ref, _o.c.user_id, _p.c.name, _o.c.quantity, _o.c.amount, _o.c.currency, _o.c.expires_at)
        .join_from(_o, _p, _p.c.id == _o.c.product_id)
        .where(
            _o.c.ref == bindparam("b_ref"),
            _o.c.status == OrderStatus.PENDING.value,
            _o.c.expires_at > bindparam("b_now", type_=t.UTCDateTime()),
        )
    )

    def open_invoice(self, order_ref: str, now: datetime) -> OpenInvoice | None:
        """The order ``order_ref`` if it still waits for payment with its reservation holding at ``now``."""
        r = run(self.conn, self._Q_INVOICE, {"b_ref": order_ref, "b_now": now}).first()
        return OpenInvoice(*r) if r else None
