"""All SQL lives here. Repositories take a connection inside a transaction, never commit, and return
domain dataclasses (``core.models``), never rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import Interval, Row, String, and_, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from core import tables as t
from core.models import (
    LIMIT_COUNTED_STATUSES,
    Category,
    DeliveryKind,
    KeyStatus,
    Order,
    OrderStatus,
    PaymentStatus,
    Product,
    User,
)
from core.tables import Id


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _part(row: Row[Any], table: Any) -> Any:
    """The columns of one table out of a joined row, by attribute, as the mappers below read them."""
    m = row._mapping
    return SimpleNamespace(**{c.name: m[c] for c in table.c})


_T = TypeVar("_T")


def _dto(cls: type[_T], r: Any, **convert: Any) -> _T:
    """A domain dataclass from a row (or ``_part``): same field names; ``convert`` maps a field to the
    type that rebuilds it (enums)."""
    values = {f.name: getattr(r, f.name) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name, typ in convert.items():
        values[name] = typ(values[name])
    return cls(**values)


def _user(r: Any) -> User:
    return _dto(User, r)


def _product(r: Any) -> Product:
    return _dto(Product, r, delivery_kind=DeliveryKind)


def _order(r: Any) -> Order:
    return _dto(Order, r, status=OrderStatus)


# Statements on the purchase path are built once: executing a prebuilt statement skips SQLAlchemy's
# construction and cache-key work, which on SQLite cost as much as running the statement itself.
_k, _o = t.keys, t.orders
_Q_USER = select(t.users).where(t.users.c.id == bindparam("b_id"))
_Q_USER_LOCK = _Q_USER.with_for_update()
_Q_PRODUCT = select(t.products).where(t.products.c.id == bindparam("b_id"))
_Q_PRODUCT_LOCK = _Q_PRODUCT.with_for_update()
_Q_RESERVE = (
    update(_k)
    .where(
        _k.c.id.in_(
            select(_k.c.id)
            .where(_k.c.product_id == bindparam("b_pid"), _k.c.status == KeyStatus.AVAILABLE.value)
            .order_by(_k.c.id)
            .limit(bindparam("b_n"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        ),
        _k.c.status == KeyStatus.AVAILABLE.value,
    )
    .values(status=KeyStatus.RESERVED.value, order_id=bindparam("b_oid"))
    .returning(_k.c.id)
)
_Q_MARK_SOLD = (
    update(_k)
    .where(_k.c.order_id == bindparam("b_oid"), _k.c.status == KeyStatus.RESERVED.value)
    .values(status=KeyStatus.SOLD.value, sold_at=bindparam("b_now"))
    .returning(_k.c.id)
)
_Q_ORDER_INSERT = insert(_o).returning(*_o.c)
_Q_ORDER_BY_REF = select(_o).where(_o.c.ref == bindparam("b_ref"))
_Q_ORDER_BY_REF_LOCK = _Q_ORDER_BY_REF.with_for_update()
_Q_ORDER_BY_ID = select(_o).where(_o.c.id == bindparam("b_id"))
_Q_ORDER_BY_ID_LOCK = _Q_ORDER_BY_ID.with_for_update()
# SET columns come from the parameters given with each execution.
_Q_ORDER_TRANSITION = (
    update(_o).where(_o.c.id == bindparam("b_id"), _o.c.status == bindparam("b_old")).returning(*_o.c)
)
# Checkout: the buyer (locked, so one buyer's checkouts queue behind each other) and the product, in one trip.
_Q_BUYER_AND_PRODUCT = (
    select(t.users, t.products)
    .select_from(t.users.outerjoin(t.products, t.products.c.id == bindparam("b_pid")))
    .where(t.users.c.id == bindparam("b_uid"))
    .with_for_update(of=t.users)
)
# Payment: the order (locked) and its product, in one trip.
_Q_ORDER_AND_PRODUCT = (
    select(_o, t.products)
    .join_from(_o, t.products, t.products.c.id == _o.c.product_id)
    .where(_o.c.ref == bindparam("b_ref"))
    .with_for_update(of=_o)
)
_Q_PAYMENT = select(t.payments).where(
    t.payments.c.provider == bindparam("b_provider"), t.payments.c.charge_id == bindparam("b_charge")
)
_Q_PAYMENT_INSERT_ONCE = {
    d: _insert(d, t.payments)
    .on_conflict_do_nothing(index_elements=["provider", "charge_id"])
    .returning(t.payments.c.id)
    for d in ("sqlite", "postgresql")
}
_Q_AUDIT_INSERT = insert(t.audit_log)
_Q_OUTBOX_INSERT = insert(t.outbox)
_Q_CURRENT_SHARED = (
    select(_k.c.id)
    .where(_k.c.product_id == bindparam("b_pid"), _k.c.status == KeyStatus.SHARED.value)
    .order_by(_k.c.id.desc())
    .limit(1)
)


class UserRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def get(self, user_id: int, *, lock: bool = False) -> User | None:
        r = (await self.conn.execute(_Q_USER_LOCK if lock else _Q_USER, {"b_id": user_id})).first()
        return _user(r) if r else None

    async def with_product(self, user_id: int, product_id: int) -> tuple[User | None, Product | None]:
        """The buyer, locked for this transaction, and the product (None for either that does not exist)."""
        r = (await self.conn.execute(_Q_BUYER_AND_PRODUCT, {"b_uid": user_id, "b_pid": product_id})).first()
        if r is None:
            return None, None
        product = _part(r, t.products)
        return _user(_part(r, t.users)), (_product(product) if product.id is not None else None)

    async def get_by_external(self, channel: str, external_id: str) -> User | None:
        q = select(t.users).where(t.users.c.channel == channel, t.users.c.external_id == external_id)
        r = (await self.conn.execute(q)).first()
        return _user(r) if r else None

    async def insert_if_absent(
        self, channel: str, external_id: str, language: str | None, referrer_id: int | None, now: datetime
    ) -> None:
        stmt = (
            _insert(self.dialect, t.users)
            .values(
                channel=channel,
                external_id=external_id,
                language=language,
                referrer_id=referrer_id,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        )
        await self.conn.execute(stmt)

    async def update(self, user_id: int, **values: Any) -> int:
        res = await self.conn.execute(update(t.users).where(t.users.c.id == user_id).values(**values))
        return res.rowcount


class CatalogRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def add_category(self, **values: Any) -> int:
        res = await self.conn.execute(insert(t.categories).values(**values).returning(t.categories.c.id))
        return int(res.scalar_one())

    async def categories(self, *, active_only: bool) -> list[Category]:
        q = select(t.categories).order_by(t.categories.c.position, t.categories.c.id)
        if active_only:
            q = q.where(t.categories.c.active)
        return [
            Category(r.id, r.name, r.description, r.position, r.active)
            for r in (await self.conn.execute(q)).all()
        ]

    async def category_exists(self, category_id: int) -> bool:
        q = select(t.categories.c.id).where(t.categories.c.id == category_id)
        return (await self.conn.execute(q)).first() is not None

    async def add_product(self, **values: Any) -> int:
        res = await self.conn.execute(insert(t.products).values(**values).returning(t.products.c.id))
        return int(res.scalar_one())

    async def update_product(self, product_id: int, **values: Any) -> int:
        res = await self.conn.execute(
            update(t.products).where(t.products.c.id == product_id).values(**values)
        )
        return res.rowcount

    async def product(self, product_id: int, *, lock: bool = False) -> Product | None:
        r = (await self.conn.execute(_Q_PRODUCT_LOCK if lock else _Q_PRODUCT, {"b_id": product_id})).first()
        return _product(r) if r else None

    async def open_orders(self, product_id: int) -> int:
        """Orders of the product still in flight: pending or paid, or holding reserved keys."""
        o, k = t.orders, t.keys
        holds_reserved = (
            select(k.c.id).where(k.c.order_id == o.c.id, k.c.status == KeyStatus.RESERVED.value).exists()
        )
        q = (
            select(func.count())
            .select_from(o)
            .where(
                o.c.product_id == product_id,
                o.c.status.in_([OrderStatus.PENDING.value, OrderStatus.PAID.value]) | holds_reserved,
            )
        )
        return int((await self.conn.execute(q)).scalar_one())

    async def products(self, *, active_only: bool, category_id: int | None = None) -> list[Product]:
        q = select(t.products).order_by(t.products.c.id)
        if active_only:
            q = q.where(t.products.c.active)
        if category_id is not None:
            q = q.where(t.products.c.category_id == category_id)
        return [_product(r) for r in (await self.conn.execute(q)).all()]


class KeyRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def reserve(self, product_id: int, order_id: int, n: int) -> list[int]:
        """Move up to ``n`` available keys of the product to ``reserved`` for the order, oldest first.

        On PostgreSQL the picked rows are locked with SKIP LOCKED, so concurrent buyers take different
        keys instead of queueing; the status guard in the UPDATE makes a lost race change nothing. The
        caller checks that exactly ``n`` ids came back.
        """
        res = await self.conn.execute(_Q_RESERVE, {"b_pid": product_id, "b_n": n, "b_oid": order_id})
        return list(res.scalars().all())

    async def mark_sold(self, order_id: int, now: datetime) -> list[int]:
        return list(
            (await self.conn.execute(_Q_MARK_SOLD, {"b_oid": order_id, "b_now": now})).scalars().all()
        )

    async def release_for_orders(self, order_ids: Sequence[int]) -> list[int]:
        """Return reserved keys of these orders to stock."""
        if not order_ids:
            return []
        k = t.keys
        stmt = (
            update(k)
            .where(k.c.order_id.in_(order_ids), k.c.status == KeyStatus.RESERVED)
            .values(status=KeyStatus.AVAILABLE, order_id=None)
            .returning(k.c.id)
        )
        return list((await self.conn.execute(stmt)).scalars().all())

    async def take_back_sold(self, order_id: int, *, void: bool) -> list[int]:
        """A refunded order's sold keys: back to stock if the buyer never saw them, else void forever."""
        k = t.keys
        values: dict[str, Any] = (
            {"status": KeyStatus.VOID}
            if void
            else {"status": KeyStatus.AVAILABLE, "order_id": None, "sold_at": None}
        )
        stmt = (
            update(k)
            .where(k.c.order_id == order_id, k.c.status == KeyStatus.SOLD)
            .values(**values)
            .returning(k.c.id)
        )
        return list((await self.conn.execute(stmt)).scalars().all())

    async def sealed_for_order(self, order_id: int) -> list[tuple[int, int, bytes, bytes]]:
        """(id, product_id, blind_index, ciphertext) of the keys an order holds or was given."""
        k = t.keys
        own = select(k.c.id, k.c.product_id, k.c.blind_index, k.c.ciphertext).where(
            k.c.order_id == order_id, k.c.status.in_((KeyStatus.SOLD, KeyStatus.VOID))
        )
        shared = (
            select(k.c.id, k.c.product_id, k.c.blind_index, k.c.ciphertext)
            .join(t.order_shared_keys, t.order_shared_keys.c.key_id == k.c.id)
            .where(t.order_shared_keys.c.order_id == order_id)
        )
        rows = (await self.conn.execute(own.union_all(shared).order_by("id"))).all()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def current_shared_key(self, product_id: int) -> int | None:
        return (await self.conn.execute(_Q_CURRENT_SHARED, {"b_pid": product_id})).scalar()

    async def retire_shared(self, product_id: int) -> int:
        k = t.keys
        res = await self.conn.execute(
            update(k)
            .where(k.c.product_id == product_id, k.c.status == KeyStatus.SHARED)
            .values(status=KeyStatus.RETIRED)
        )
        return res.rowcount

    async def add_one(self, **values: Any) -> int:
        res = await self.conn.execute(insert(t.keys).values(**values).returning(t.keys.c.id))
        return int(res.scalar_one())

    async def find_by_index(self, product_id: int, blind_index: bytes) -> tuple[int, str] | None:
        k = t.keys
        q = select(k.c.id, k.c.status).where(k.c.product_id == product_id, k.c.blind_index == blind_index)
        r = (await self.conn.execute(q)).first()
        return (r[0], r[1]) if r else None

    async def link_shared(self, order_id: int, key_id: int) -> None:
        await self.conn.execute(insert(t.order_shared_keys).values(order_id=order_id, key_id=key_id))

    async def count_by_status(self, product_id: int | None = None) -> dict[tuple[int, str], int]:
        k = t.keys
        q = select(k.c.product_id, k.c.status, func.count()).group_by(k.c.product_id, k.c.status)
        if product_id is not None:
            q = q.where(k.c.product_id == product_id)
        return {(r[0], r[1]): r[2] for r in (await self.conn.execute(q)).all()}

    async def available(self, product_id: int) -> int:
        k = t.keys
        q = (
            select(func.count())
            .select_from(k)
            .where(k.c.product_id == product_id, k.c.status == KeyStatus.AVAILABLE)
        )
        return int((await self.conn.execute(q)).scalar_one())

    async def available_by_product(self) -> dict[int, int]:
        k = t.keys
        q = (
            select(k.c.product_id, func.count())
            .where(k.c.status == KeyStatus.AVAILABLE.value)
            .group_by(k.c.product_id)
        )
        return {r[0]: r[1] for r in (await self.conn.execute(q)).all()}

    async def count_not_under(self, kid: str) -> int:
        q = select(func.count()).select_from(t.keys).where(t.keys.c.kid != kid)
        return int((await self.conn.execute(q)).scalar_one())

    async def count_all(self) -> int:
        return int((await self.conn.execute(select(func.count()).select_from(t.keys))).scalar_one())

    async def batch_not_under(self, kid: str, after_id: int, limit: int) -> list[Row[Any]]:
        k = t.keys
        q = (
            select(k.c.id, k.c.product_id, k.c.blind_index, k.c.ciphertext, k.c.kid)
            .where(k.c.id > after_id, k.c.kid != kid)
            .order_by(k.c.id)
            .limit(limit)
        )
        return list((await self.conn.execute(q)).all())

    async def reseal(self, key_id: int, old_kid: str, new_kid: str, ciphertext: bytes) -> int:
        k = t.keys
        res = await self.conn.execute(
            update(k).where(k.c.id == key_id, k.c.kid == old_kid).values(kid=new_kid, ciphertext=ciphertext)
        )
        return res.rowcount


class OrderRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def add(self, **values: Any) -> Order:
        return _order((await self.conn.execute(_Q_ORDER_INSERT, values)).one())

    async def by_ref(self, ref: str, *, lock: bool = False) -> Order | None:
        r = (
            await self.conn.execute(_Q_ORDER_BY_REF_LOCK if lock else _Q_ORDER_BY_REF, {"b_ref": ref})
        ).first()
        return _order(r) if r else None

    async def with_product(self, ref: str) -> tuple[Order, Product] | None:
        """The order, locked for this transaction, with its product."""
        r = (await self.conn.execute(_Q_ORDER_AND_PRODUCT, {"b_ref": ref})).first()
        return (_order(_part(r, _o)), _product(_part(r, t.products))) if r else None

    async def get(self, order_id: int, *, lock: bool = False) -> Order | None:
        q = _Q_ORDER_BY_ID_LOCK if lock else _Q_ORDER_BY_ID
        r = (await self.conn.execute(q, {"b_id": order_id})).first()
        return _order(r) if r else None

    async def set_status(
        self, order_id: int, old: OrderStatus, new: OrderStatus, **values: Any
    ) -> Order | None:
        """Guarded transition: changes the row only if it is still in ``old``. Returns the updated order,
        or None when it was not in ``old`` (nothing changed)."""
        params = {"b_id": order_id, "b_old": old.value, "status": new.value, **values}
        r = (await self.conn.execute(_Q_ORDER_TRANSITION, params)).first()
        return _order(r) if r else None

    async def mark_revealed(self, order_id: int, now: datetime) -> None:
        o = t.orders
        await self.conn.execute(
            update(o).where(o.c.id == order_id, o.c.revealed_at.is_(None)).values(revealed_at=now)
        )

    async def units_since(self, product_id: int, since: datetime, user_id: int | None = None) -> int:
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
        return int((await self.conn.execute(q)).scalar_one())

    async def pending_for_user(self, user_id: int, now: datetime) -> list[Order]:
        """The user's unpaid orders whose reservation still holds, newest first."""
        o = t.orders
        q = (
            select(o)
            .where(o.c.user_id == user_id, o.c.status == OrderStatus.PENDING, o.c.expires_at > now)
            .order_by(o.c.created_at.desc(), o.c.id.desc())
        )
        return [_order(r) for r in (await self.conn.execute(q)).all()]

    async def due_to_expire(self, now: datetime, limit: int) -> list[tuple[int, str]]:
        o = t.orders
        q = (
            select(o.c.id, o.c.ref)
            .where(o.c.status == OrderStatus.PENDING, o.c.expires_at <= now)
            .order_by(o.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [(r[0], r[1]) for r in (await self.conn.execute(q)).all()]

    async def expire(self, order_ids: Sequence[int]) -> int:
        o = t.orders
        res = await self.conn.execute(
            update(o)
            .where(o.c.id.in_(order_ids), o.c.status == OrderStatus.PENDING)
            .values(status=OrderStatus.EXPIRED)
        )
        return res.rowcount

    async def for_user(self, user_id: int, limit: int, offset: int) -> list[tuple[Order, str]]:
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
        return [(_order(r), r.product_name) for r in (await self.conn.execute(q)).all()]


class PaymentRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def get(self, provider: str, charge_id: str) -> Row[Any] | None:
        return (await self.conn.execute(_Q_PAYMENT, {"b_provider": provider, "b_charge": charge_id})).first()

    async def add_once(self, **values: Any) -> bool:
        """Insert a payment unless its (provider, charge_id) exists. True if inserted.

        A concurrent twin waits on the UNIQUE index until the first commits, then inserts nothing."""
        stmt = _Q_PAYMENT_INSERT_ONCE[self.dialect]
        return (await self.conn.execute(stmt, values)).first() is not None

    async def set_status(
        self, payment_id: int, old: Iterable[PaymentStatus], new: PaymentStatus, **values: Any
    ) -> int:
        p = t.payments
        res = await self.conn.execute(
            update(p)
            .where(p.c.id == payment_id, p.c.status.in_([s.value for s in old]))
            .values(status=new, **values)
        )
        return res.rowcount

    async def for_order(self, order_id: int) -> list[Row[Any]]:
        p = t.payments
        return list((await self.conn.execute(select(p).where(p.c.order_id == order_id))).all())

    async def mark_order_refund_due(self, order_id: int, reason: str) -> list[Row[Any]]:
        """Accepted payments of the order become refund_due; returns their rows (provider, charge_id,
        amount, currency, payer_id)."""
        p = t.payments
        res = await self.conn.execute(
            update(p)
            .where(p.c.order_id == order_id, p.c.status == PaymentStatus.ACCEPTED)
            .values(status=PaymentStatus.REFUND_DUE, reason=reason)
            .returning(p.c.provider, p.c.charge_id, p.c.amount, p.c.currency, p.c.payer_id)
        )
        return list(res.all())


class AuditRepo:
    """Audit rows are collected and written together (one round trip) before the unit of work commits;
    a rollback discards them with everything else."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect
        self._pending: list[dict[str, Any]] = []

    async def add(
        self,
        at: datetime,
        actor: str,
        action: str,
        *,
        product_id: int | None = None,
        order_id: int | None = None,
        **detail: Any,
    ) -> None:
        self._pending.append(
            {
                "at": at,
                "actor": actor,
                "action": action,
                "product_id": product_id,
                "order_id": order_id,
                "detail": detail,
            }
        )

    async def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            await self.conn.execute(_Q_AUDIT_INSERT, rows)

    async def for_order(self, order_id: int) -> list[tuple[str, dict[str, Any]]]:
        await self.flush()
        a = t.audit_log
        q = select(a.c.action, a.c.detail).where(a.c.order_id == order_id).order_by(a.c.id)
        return [(r[0], r[1]) for r in (await self.conn.execute(q)).all()]


class OutboxRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def add(self, user_id: int, kind: str, payload: dict[str, Any], now: datetime) -> None:
        values = {"user_id": user_id, "kind": kind, "payload": payload, "status": "pending"}
        await self.conn.execute(_Q_OUTBOX_INSERT, {**values, "next_attempt_at": now, "created_at": now})

    async def pending(self, limit: int = 100) -> list[Row[Any]]:
        q = select(t.outbox).where(t.outbox.c.status == "pending").order_by(t.outbox.c.id).limit(limit)
        return list((await self.conn.execute(q)).all())

    async def claim(self, channel: str, now: datetime, lease_until: datetime, limit: int) -> list[Row[Any]]:
        """Take a channel's due messages for sending: their next attempt moves to ``lease_until``, so
        another sender (or this one after a crash) picks them up only once the lease has run out."""
        o, u = t.outbox, t.users
        pick = (
            select(o.c.id)
            .join_from(o, u, u.c.id == o.c.user_id)
            .where(o.c.status == "pending", o.c.next_attempt_at <= now, u.c.channel == channel)
            .order_by(o.c.id)
            .limit(limit)
            .with_for_update(of=o, skip_locked=True)
        )
        ids = list((await self.conn.execute(pick)).scalars())
        if not ids:
            return []
        await self.conn.execute(update(o).where(o.c.id.in_(ids)).values(next_attempt_at=lease_until))
        q = (
            select(o, u.c.channel, u.c.external_id, u.c.language)
            .join_from(o, u, u.c.id == o.c.user_id)
            .where(o.c.id.in_(ids))
            .order_by(o.c.id)
        )
        return list((await self.conn.execute(q)).all())

    async def finish(self, message_id: int, status: str, now: datetime, error: str | None = None) -> None:
        o = t.outbox
        values: dict[str, Any] = {"status": status, "last_error": error[:255] if error else None}
        if status == "sent":
            values["sent_at"] = now
        await self.conn.execute(update(o).where(o.c.id == message_id).values(**values))

    async def reschedule(self, message_id: int, at: datetime, error: str) -> int:
        """Try again at ``at``; returns the number of attempts so far."""
        o = t.outbox
        res = await self.conn.execute(
            update(o)
            .where(o.c.id == message_id)
            .values(attempts=o.c.attempts + 1, next_attempt_at=at, last_error=error[:255])
            .returning(o.c.attempts)
        )
        return int(res.scalar_one())


def _db_now(dialect: str, minus: timedelta | None = None) -> Any:
    """The database's clock as an SQL expression comparable with (and storable in) a ``UTCDateTime``.

    On SQLite ``UTCDateTime`` stores naive UTC text as ``YYYY-MM-DD HH:MM:SS.ffffff``; SQLite's own clock
    gives milliseconds (``%f`` is ``SS.SSS``), so three zeros complete the same fixed-width format and text
    order stays time order.
    """
    if dialect == "sqlite":
        modifiers = () if minus is None else (f"-{minus.total_seconds():.3f} seconds",)
        return func.strftime("%Y-%m-%d %H:%M:%f000", "now", *modifiers, type_=t.UTCDateTime())
    now = func.statement_timestamp(type_=t.UTCDateTime())
    return now if minus is None else now - literal(minus, Interval())


class ImportRepo:
    """Imports in progress. Their heartbeat and the staleness check both read the database's clock: the
    process importing and the one sweeping may run on hosts whose clocks disagree."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def start(self, product_id: int, actor: str, now: datetime) -> int:
        res = await self.conn.execute(
            insert(t.stock_imports)
            .values(
                product_id=product_id,
                status="running",
                actor=actor,
                started_at=now,
                heartbeat_at=_db_now(self.dialect),
            )
            .returning(t.stock_imports.c.id)
        )
        return int(res.scalar_one())

    async def heartbeat(self, import_id: int, lines: int) -> bool:
        """Mark a running import alive (database time). False if it is no longer running (swept)."""
        si = t.stock_imports
        res = await self.conn.execute(
            update(si)
            .where(si.c.id == import_id, si.c.status == "running")
            .values(heartbeat_at=_db_now(self.dialect), lines=lines)
        )
        return res.rowcount == 1

    async def lock_running(self, import_id: int) -> bool:
        """Lock the import row for this transaction (FOR UPDATE; on SQLite the write transaction holds
        the database). True if it is still running, so it may publish."""
        si = t.stock_imports
        q = select(si.c.status).where(si.c.id == import_id).with_for_update()
        return (await self.conn.execute(q)).scalar() == "running"

    async def staged_count(self, import_id: int) -> int:
        s = t.stock_import_rows
        q = select(func.count()).select_from(s).where(s.c.import_id == import_id)
        return int((await self.conn.execute(q)).scalar_one())

    async def finish(self, import_id: int, status: str, now: datetime, **counts: int) -> int:
        """Close a running import as ``done`` or ``failed``; 0 if it was not running any more."""
        si = t.stock_imports
        res = await self.conn.execute(
            update(si)
            .where(si.c.id == import_id, si.c.status == "running")
            .values(status=status, heartbeat_at=_db_now(self.dialect), finished_at=now, **counts)
        )
        return res.rowcount

    async def stage(self, import_id: int, kid: str, sealed: list[tuple[bytes, bytes]]) -> None:
        """Write a batch of (blind_index, ciphertext) to the staging table.

        The one bulk path that goes below SQLAlchemy to the driver (executemany on SQLite, COPY on
        PostgreSQL), on the unit of work's own connection and transaction: per-row parameter processing
        would otherwise cost more than encrypting the key.
        """
        raw = (await self.conn.get_raw_connection()).driver_connection
        assert raw is not None
        if self.dialect == "sqlite":
            await raw.executemany(
                "INSERT INTO stock_import_rows (import_id, kid, blind_index, ciphertext) VALUES (?, ?, ?, ?)",
                [(import_id, kid, b, c) for b, c in sealed],
            )
        else:
            await raw.copy_records_to_table(
                "stock_import_rows",
                records=[(import_id, kid, b, c) for b, c in sealed],
                columns=["import_id", "kid", "blind_index", "ciphertext"],
            )

    async def publish(self, import_id: int, product_id: int, now: datetime) -> int:
        """Move the staged keys into stock, skipping any the product already has (or that repeat within
        the import). Sorted by blind index so the UNIQUE index is filled in order. Returns how many.
        The caller has locked the import (``lock_running``) and checked its staged count."""
        s = t.stock_import_rows
        rows = (
            select(
                literal(product_id, Id),
                literal(KeyStatus.AVAILABLE.value, String(16)),
                s.c.kid,
                s.c.blind_index,
                s.c.ciphertext,
                s.c.import_id,
                literal(now, t.UTCDateTime()),
            )
            .where(s.c.import_id == import_id)
            .order_by(s.c.blind_index)
        )
        stmt = (
            _insert(self.dialect, t.keys)
            .from_select(
                ["product_id", "status", "kid", "blind_index", "ciphertext", "import_id", "created_at"], rows
            )
            .on_conflict_do_nothing(index_elements=["product_id", "blind_index"])
        )
        added = (await self.conn.execute(stmt)).rowcount
        await self.discard(import_id)
        return added

    async def discard(self, import_id: int) -> int:
        s = t.stock_import_rows
        return (await self.conn.execute(delete(s).where(s.c.import_id == import_id))).rowcount

    async def stale(self, older_than: timedelta) -> list[int]:
        """Running imports whose last heartbeat is older than ``older_than`` by the database's clock."""
        si = t.stock_imports
        q = select(si.c.id).where(
            si.c.status == "running", si.c.heartbeat_at < _db_now(self.dialect, older_than)
        )
        return list((await self.conn.execute(q)).scalars().all())

    async def abandon(self, import_id: int, older_than: timedelta, now: datetime) -> int:
        """Mark a stale import failed and remove its staged keys, unless it beat (or finished) since it
        was found stale: the guard is re-checked by the UPDATE itself. Returns the staged keys removed,
        or -1 when the import was not abandoned."""
        si = t.stock_imports
        res = await self.conn.execute(
            update(si)
            .where(
                si.c.id == import_id,
                si.c.status == "running",
                si.c.heartbeat_at < _db_now(self.dialect, older_than),
            )
            .values(status="failed", finished_at=now)
        )
        if res.rowcount != 1:
            return -1
        return await self.discard(import_id)


class CursorRepo:
    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def get(self, name: str) -> int | None:
        q = select(t.cursors.c.position).where(t.cursors.c.name == name)
        return (await self.conn.execute(q)).scalar()

    async def advance(self, name: str, position: int, now: datetime) -> None:
        """Move the cursor forward (never back: two instances may reconcile at once)."""
        c = t.cursors
        stmt = _insert(self.dialect, c).values(name=name, position=position, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "position": func.max(c.c.position, stmt.excluded.position)
                if self.dialect == "sqlite"
                else func.greatest(c.c.position, stmt.excluded.position),
                "updated_at": now,
            },
        )
        await self.conn.execute(stmt)


class Repositories:
    """Every repository, bound to the one connection of a unit of work."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.users = UserRepo(conn, dialect)
        self.catalog = CatalogRepo(conn, dialect)
        self.keys = KeyRepo(conn, dialect)
        self.orders = OrderRepo(conn, dialect)
        self.payments = PaymentRepo(conn, dialect)
        self.audit = AuditRepo(conn, dialect)
        self.outbox = OutboxRepo(conn, dialect)
        self.imports = ImportRepo(conn, dialect)
        self.cursors = CursorRepo(conn, dialect)
        self.notices = PaymentNoticeRepo(conn, dialect)

    async def flush(self) -> None:
        """Write what repositories hold back until commit (audit rows)."""
        await self.audit.flush()


class PaymentNoticeRepo:
    """Payment notices as received, before (and until) they are processed."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    async def add_once(self, **values: Any) -> int | None:
        """Insert a notice unless its (provider, charge_id) exists. Its id if inserted, else None."""
        n = t.payment_notices
        stmt = (
            _insert(self.dialect, n)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["provider", "charge_id"])
            .returning(n.c.id)
        )
        return (await self.conn.execute(stmt)).scalar()

    async def id_of(self, provider: str, charge_id: str) -> int | None:
        n = t.payment_notices
        q = select(n.c.id).where(n.c.provider == provider, n.c.charge_id == charge_id)
        return (await self.conn.execute(q)).scalar()

    async def get(self, notice_id: int, *, lock: bool = False) -> Row[Any] | None:
        q = select(t.payment_notices).where(t.payment_notices.c.id == notice_id)
        return (await self.conn.execute(q.with_for_update() if lock else q)).first()

    async def due(self, now: datetime, limit: int) -> list[int]:
        n = t.payment_notices
        q = (
            select(n.c.id)
            .where(n.c.status == "pending", n.c.next_attempt_at <= now)
            .order_by(n.c.next_attempt_at, n.c.id)
            .limit(limit)
        )
        return list((await self.conn.execute(q)).scalars().all())

    async def mark_done(self, notice_id: int, now: datetime) -> int:
        n = t.payment_notices
        res = await self.conn.execute(
            update(n)
            .where(n.c.id == notice_id, n.c.status == "pending")
            .values(status="done", processed_at=now)
        )
        return res.rowcount

    async def reschedule(self, notice_id: int, at: datetime, error: str) -> int:
        """A failed attempt: try again at ``at``. Returns the attempts so far (0 if no longer pending)."""
        n = t.payment_notices
        res = await self.conn.execute(
            update(n)
            .where(n.c.id == notice_id, n.c.status == "pending")
            .values(attempts=n.c.attempts + 1, next_attempt_at=at, last_error=error[:255])
            .returning(n.c.attempts)
        )
        return int(res.scalar() or 0)
