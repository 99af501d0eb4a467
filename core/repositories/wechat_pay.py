"""Orders opened at WeChat Pay (``wechat_pay_orders``): recorded when the pay page asks WeChat Pay for a
prepay (or a Native QR), taken in turns by the reconciliation job, settled once WeChat Pay says paid or
the order was closed there. Every change is guarded by the state it expects."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, or_, select, update

from core import tables as t
from core.repositories._rows import dialect_insert

OPEN, PAID, CLOSED = "open", "paid", "closed"


class OpenPayOrder(NamedTuple):
    """An order open at WeChat Pay, with what the reconciliation needs of the shop's order."""

    order_ref: str
    trade_type: str
    opened_at: datetime
    order_status: str
    expires_at: datetime
    amount: int
    currency: str


class WechatPayRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def open(self, order_ref: str, trade_type: str, now: datetime) -> str:
        """Record that ``order_ref`` was opened at WeChat Pay as ``trade_type``; returns the trade type
        it was first opened as (WeChat Pay keeps one trade per out_trade_no)."""
        w = t.wechat_pay_orders
        self.conn.execute(
            dialect_insert(self.dialect, w)
            .values(order_ref=order_ref, trade_type=trade_type, state=OPEN, opened_at=now)
            .on_conflict_do_nothing(index_elements=["order_ref"])
        )
        return str(self.conn.execute(select(w.c.trade_type).where(w.c.order_ref == order_ref)).scalar_one())

    def trade_type(self, order_ref: str) -> str | None:
        w = t.wechat_pay_orders
        return self.conn.execute(
            select(w.c.trade_type).where(w.c.order_ref == order_ref)
        ).scalar_one_or_none()

    def state(self, order_ref: str) -> str | None:
        w = t.wechat_pay_orders
        return self.conn.execute(select(w.c.state).where(w.c.order_ref == order_ref)).scalar_one_or_none()

    def due(self, opened_before: datetime, checked_before: datetime, limit: int) -> list[OpenPayOrder]:
        """Open rows opened before ``opened_before`` and not asked about since ``checked_before``, oldest
        check first, with their order."""
        w, o = t.wechat_pay_orders, t.orders
        stmt = (
            select(
                w.c.order_ref,
                w.c.trade_type,
                w.c.opened_at,
                o.c.status,
                o.c.expires_at,
                o.c.amount,
                o.c.currency,
            )
            .join(o, o.c.ref == w.c.order_ref)
            .where(
                w.c.state == OPEN,
                w.c.opened_at < opened_before,
                or_(w.c.checked_at.is_(None), w.c.checked_at < checked_before),
            )
            .order_by(w.c.checked_at.asc().nulls_first(), w.c.order_ref)
            .limit(limit)
        )
        return [OpenPayOrder(*row) for row in self.conn.execute(stmt)]

    def take(self, order_ref: str, checked_before: datetime, now: datetime) -> bool:
        """Mark an open row asked about now, unless another scheduler did since ``checked_before``."""
        w = t.wechat_pay_orders
        stmt = (
            update(w)
            .where(
                w.c.order_ref == order_ref,
                w.c.state == OPEN,
                or_(w.c.checked_at.is_(None), w.c.checked_at < checked_before),
            )
            .values(checked_at=now)
            .returning(w.c.order_ref)
        )
        return self.conn.execute(stmt).first() is not None

    def settle(self, order_ref: str, state: str, now: datetime) -> bool:
        """An open row becomes ``paid`` or ``closed``; False when it was not open (or not there)."""
        w = t.wechat_pay_orders
        stmt = (
            update(w)
            .where(and_(w.c.order_ref == order_ref, w.c.state == OPEN))
            .values(state=state, settled_at=now)
            .returning(w.c.order_ref)
        )
        return self.conn.execute(stmt).first() is not None
