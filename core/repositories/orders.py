"""Orders: the state machine's rows, guarded transitions, limits and history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from core import tables as t
from core.models import LIMIT_COUNTED_STATUSES, Order, OrderLine, OrderStatus, Product, User
from core.repositories._rows import part, to_order, to_product, to_user
from core.sql import Prebuilt, run

_o = t.orders


@dataclass(frozen=True, slots=True)
class DueOrder:
    """A pending order whose reservation has run out, locked for expiry."""

    id: int
    ref: str


class OrderRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    _Q_ORDER_INSERT = Prebuilt(insert(_o).returning(*_o.c))

    def add(self, **values: Any) -> Order:
        return to_order((run(self.conn, self._Q_ORDER_INSERT, values)).one())

    _Q_ORDER_BY_REF = Prebuilt(select(_o).where(_o.c.ref == bindparam("b_ref")))
    _Q_ORDER_BY_REF_LOCK = Prebuilt(_Q_ORDER_BY_REF.stmt.with_for_update())

    def by_ref(self, ref: str, *, lock: bool = False) -> Order | None:
        q = self._Q_ORDER_BY_REF_LOCK if lock else self._Q_ORDER_BY_REF
        r = (run(self.conn, q, {"b_ref": ref})).first()
        return to_order(r) if r else None

    # Payment: the order (locked) and its product, in one trip.
    _Q_ORDER_AND_PRODUCT = Prebuilt(
        select(_o, t.products)
        .join_from(_o, t.products, t.products.c.id == _o.c.product_id)
        .where(_o.c.ref == bindparam("b_ref"))
        .with_for_update(of=_o)
    )

    def with_product(self, ref: str) -> tuple[Order, Product] | None:
        """The order, locked for this transaction, with its product."""
        r = (run(self.conn, self._Q_ORDER_AND_PRODUCT, {"b_ref": ref})).first()
        return (to_order(part(r, _o)), to_product(part(r, t.products))) if r else None

    # Pre-checkout: the order, its buyer and its product, in one statement (a read: nothing locked).
    _Q_ORDER_BUYER_PRODUCT = Prebuilt(
        select(_o, t.users, t.products)
        .join_from(_o, t.users, t.users.c.id == _o.c.user_id)
        .join_from(_o, t.products, t.products.c.id == _o.c.product_id)
        .where(_o.c.ref == bindparam("b_ref"))
    )

    def with_buyer_and_product(self, ref: str) -> tuple[Order, User, Product] | None:
        r = run(self.conn, self._Q_ORDER_BUYER_PRODUCT, {"b_ref": ref}).first()
        if r is None:
            return None
        return to_order(part(r, _o)), to_user(part(r, t.users)), to_product(part(r, t.products))

    _Q_ORDER_BY_ID = Prebuilt(select(_o).where(_o.c.id == bindparam("b_id")))
    _Q_ORDER_BY_ID_LOCK = Prebuilt(_Q_ORDER_BY_ID.stmt.with_for_update())

    def get(self, order_id: int, *, lock: bool = False) -> Order | None:
        q = self._Q_ORDER_BY_ID_LOCK if lock else self._Q_ORDER_BY_ID
        r = (run(self.conn, q, {"b_id": order_id})).first()
        return to_order(r) if r else None

    # SET columns come from the parameters given with each execution.
    _Q_ORDER_TRANSITION = Prebuilt(
        update(_o).where(_o.c.id == bindparam("b_id"), _o.c.status == bindparam("b_old")).returning(*_o.c)
    )

    def set_status(self, order_id: int, old: OrderStatus, new: OrderStatus, **values: Any) -> Order | None:
        """Guarded transition: changes the row only if it is still in ``old``. Returns the updated order,
        or None when it was not in ``old`` (nothing changed)."""
        params = {"b_id": order_id, "b_old": old.value, "status": new.value, **values}
        r = (run(self.conn, self._Q_ORDER_TRANSITION, params)).first()
        return to_order(r) if r else None

    _Q_ORDER_RATES = Prebuilt(update(_o).where(_o.c.id == bindparam("b_id"), _o.c.commission_rates.is_(None)))

    def set_commission_rates(self, order_id: int, rates: tuple[int, ...]) -> bool:
        """Keep the commission rate per level the order's delivery applied (``core.ledger``), once: False
        when the order has its rates already (its delivery is replayed), and they stay as they were."""
        done = run(self.conn, self._Q_ORDER_RATES, {"b_id": order_id, "commission_rates": rates})
        return done.rowcount == 1

    def page(self, after_id: int, limit: int) -> list[Order]:
        """Up to ``limit`` orders after ``after_id``, by id: every order, a page at a time (the ledger
        check)."""
        q = select(_o).where(_o.c.id > after_id).order_by(_o.c.id).limit(limit)
        return [to_order(r) for r in self.conn.execute(q).all()]

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(_o)).scalar_one())

    _Q_ORDER_REVEALED = Prebuilt(update(_o).where(_o.c.id == bindparam("b_id"), _o.c.revealed_at.is_(None)))

    def mark_revealed(self, order_id: int, now: datetime) -> None:
        run(self.conn, self._Q_ORDER_REVEALED, {"b_id": order_id, "revealed_at": now})

    def units_since(self, product_id: int, since: datetime, user_id: int | None = None) -> int:
        """Units in orders that count against limits (pending, paid, delivered) created since ``since``."""
        o = t.orders
        cond = [
            o.c.product_id == product_id,
            o.c.created_at >= since,
            o.c.status.in_([s.value for s in LIMIT_COUNTED_STATUSES]),
        ]
        if user_id is not None:
            cond.append(o.c.user_id == user_id)
        q = select(func.coalesce(func.sum(o.c.quantity), 0)).where(and_(*cond))
        return int((self.conn.execute(q)).scalar_one())

    _Q_PENDING_FOR_USER = Prebuilt(
        select(_o)
        .where(
            _o.c.user_id == bindparam("b_uid"),
            _o.c.status == OrderStatus.PENDING.value,
            _o.c.expires_at > bindparam("b_now", type_=t.UTCDateTime()),
        )
        .order_by(_o.c.created_at.desc(), _o.c.id.desc())
    )

    def pending_for_user(self, user_id: int, now: datetime) -> list[Order]:
        """The user's unpaid orders whose reservation still holds, newest first."""
        rows = run(self.conn, self._Q_PENDING_FOR_USER, {"b_uid": user_id, "b_now": now}).all()
        return [to_order(r) for r in rows]

    def due_to_expire(self, now: datetime, limit: int) -> list[DueOrder]:
        o = t.orders
        q = (
            select(o.c.id, o.c.ref)
            .where(o.c.status == OrderStatus.PENDING, o.c.expires_at <= now)
            .order_by(o.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [DueOrder(r[0], r[1]) for r in (self.conn.execute(q)).all()]

    def expire(self, order_ids: Sequence[int]) -> int:
        o = t.orders
        res = self.conn.execute(
            update(o)
            .where(o.c.id.in_(order_ids), o.c.status == OrderStatus.PENDING)
            .values(status=OrderStatus.EXPIRED)
        )
        return res.rowcount

    def for_user(self, user_id: int, limit: int, offset: int) -> list[OrderLine]:
        """The user's orders, newest first, each with its product's name."""
        o = t.orders
        q = (
            select(o, t.products.c.name.label("product_name"))
            .join_from(o, t.products, t.products.c.id == o.c.product_id)
            .where(o.c.user_id == user_id)
            .order_by(o.c.created_at.desc(), o.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [OrderLine(to_order(r), r.product_name) for r in (self.conn.execute(q)).all()]
