"""Sales figures for the reports: sums over orders, grouped by product, currency and day.

Days are the shop's days (``SHOP_TIMEZONE``), whose starts the service computes as UTC instants: a day is
told by comparing ``paid_at`` with those instants (one ``CASE``), so both databases agree without either
knowing the time zone, and a day of 23 or 25 hours (a DST change) is counted as the day it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, literal, select

from core import tables as t
from core.models import DeliveryKind, OrderStatus

# Orders that were paid, whatever happened to them since (a refund is counted apart).
PAID_STATES = (OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.REFUND_DUE, OrderStatus.REFUNDED)


@dataclass(frozen=True, slots=True)
class SalesRow:
    """Orders paid on one day (an index into the report's days), of one product, in one currency."""

    day: int
    product_id: int
    currency: str
    orders: int
    units: int
    amount: int


@dataclass(frozen=True, slots=True)
class RefundRow:
    currency: str
    orders: int
    amount: int


class ReportRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def sales(self, day_starts: Sequence[datetime], end: datetime) -> list[SalesRow]:
        """Paid orders from ``day_starts[0]`` to ``end``, summed per day, product and currency."""
        o = t.orders
        whens = [(o.c.paid_at < b, literal(i)) for i, b in enumerate(day_starts[1:])]
        day: Any = case(*whens, else_=literal(len(day_starts) - 1)) if whens else literal(0)
        paid = (
            select(day.label("day"), o.c.product_id, o.c.currency, o.c.quantity, o.c.amount)
            .where(
                o.c.paid_at >= day_starts[0],
                o.c.paid_at < end,
                o.c.status.in_([s.value for s in PAID_STATES]),
            )
            .subquery()
        )
        q = select(
            paid.c.day,
            paid.c.product_id,
            paid.c.currency,
            func.count(),
            func.coalesce(func.sum(paid.c.quantity), 0),
            func.coalesce(func.sum(paid.c.amount), 0),
        ).group_by(paid.c.day, paid.c.product_id, paid.c.currency)
        return [SalesRow(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5])) for r in self.conn.execute(q)]

    def refunds(self, start: datetime, end: datetime) -> list[RefundRow]:
        """Orders whose refund was decided from ``start`` to ``end`` (the ``refund_requested`` audit row:
        the moment the order left the shop's takings), per currency."""
        o, a = t.orders, t.audit_log
        q = (
            select(o.c.currency, func.count(), func.coalesce(func.sum(o.c.amount), 0))
            .select_from(a.join(o, o.c.id == a.c.order_id))
            .where(a.c.action == "refund_requested", a.c.at >= start, a.c.at < end)
            .group_by(o.c.currency)
        )
        return [RefundRow(r[0], r[1], int(r[2])) for r in self.conn.execute(q)]

    def new_buyers(self, start: datetime, end: datetime) -> int:
        """Users whose first paid order was paid from ``start`` to ``end``."""
        o, before = t.orders, t.orders.alias("before")
        paid = [s.value for s in PAID_STATES]
        earlier = (
            select(literal(1))
            .where(before.c.user_id == o.c.user_id, before.c.paid_at < start, before.c.status.in_(paid))
            .exists()
        )
        q = select(func.count(func.distinct(o.c.user_id))).where(
            o.c.paid_at >= start, o.c.paid_at < end, o.c.status.in_(paid), ~earlier
        )
        return int(self.conn.execute(q).scalar() or 0)

    def awaiting_manual(self) -> int:
        """Paid orders of manual-delivery products, waiting for an admin to deliver them."""
        o, p = t.orders, t.products
        q = (
            select(func.count())
            .select_from(o.join(p, p.c.id == o.c.product_id))
            .where(o.c.status == OrderStatus.PAID.value, p.c.delivery_kind == DeliveryKind.MANUAL.value)
        )
        return int(self.conn.execute(q).scalar_one())
