"""Payments: one row per (provider, charge id), recording who paid and what became of it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam, select, update

from core import tables as t
from core.models import OwedPayment, Payment, PaymentStatus
from core.repositories._rows import dialect_insert, to_dataclass
from core.sql import Prebuilt, run


def _payment(r: Any) -> Payment:
    return to_dataclass(Payment, r, status=PaymentStatus)


class PaymentRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    _Q_PAYMENT = Prebuilt(
        select(t.payments).where(
            t.payments.c.provider == bindparam("b_provider"), t.payments.c.charge_id == bindparam("b_charge")
        )
    )

    def get(self, provider: str, charge_id: str) -> Payment | None:
        params = {"b_provider": provider, "b_charge": charge_id}
        r = (run(self.conn, self._Q_PAYMENT, params)).first()
        return _payment(r) if r else None

    _Q_PAYMENT_INSERT_ONCE: ClassVar[dict[str, Prebuilt]] = {
        d: Prebuilt(
            dialect_insert(d, t.payments)
            .on_conflict_do_nothing(index_elements=["provider", "charge_id"])
            .returning(t.payments.c.id)
        )
        for d in ("sqlite", "postgresql")
    }

    def add_once(self, **values: Any) -> bool:
        """Insert a payment unless its (provider, charge_id) exists. True if inserted.

        A concurrent twin waits on the UNIQUE index until the first commits, then inserts nothing."""
        stmt = self._Q_PAYMENT_INSERT_ONCE[self.dialect]
        return (run(self.conn, stmt, values)).first() is not None

    def set_status(
        self, payment_id: int, old: Iterable[PaymentStatus], new: PaymentStatus, **values: Any
    ) -> int:
        p = t.payments
        res = self.conn.execute(
            update(p)
            .where(p.c.id == payment_id, p.c.status.in_([s.value for s in old]))
            .values(status=new, **values)
        )
        return res.rowcount

    def owed(self, provider: str, limit: int) -> list[Payment]:
        """Payments of ``provider`` still owed back (``refund_due``, or ``rejected``: taken for an order
        they could not pay), oldest first."""
        p = t.payments
        owed = (PaymentStatus.REFUND_DUE.value, PaymentStatus.REJECTED.value)
        stmt = select(p).where(p.c.status.in_(owed), p.c.provider == provider).order_by(p.c.id).limit(limit)
        return [_payment(row) for row in self.conn.execute(stmt)]

    def for_order(self, order_id: int) -> list[Payment]:
        p = t.payments
        rows = (self.conn.execute(select(p).where(p.c.order_id == order_id))).all()
        return [_payment(r) for r in rows]

    def for_orders(self, order_ids: Iterable[int]) -> list[Payment]:
        p = t.payments
        q = select(p).where(p.c.order_id.in_(list(order_ids))).order_by(p.c.id)
        return [_payment(r) for r in self.conn.execute(q).all()]

    def mark_order_refund_due(self, order_id: int, reason: str) -> list[OwedPayment]:
        """Accepted payments of the order become refund_due; returns what paying each back needs."""
        p = t.payments
        res = self.conn.execute(
            update(p)
            .where(p.c.order_id == order_id, p.c.status == PaymentStatus.ACCEPTED)
            .values(status=PaymentStatus.REFUND_DUE, reason=reason)
            .returning(p.c.provider, p.c.charge_id, p.c.amount, p.c.currency, p.c.payer_id)
        )
        return [to_dataclass(OwedPayment, r) for r in res.all()]
