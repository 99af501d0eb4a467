"""Keys in stock: reserving, selling, taking back, shared keys, and re-encryption."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update

from core import tables as t
from core.models import KeyStatus, SealedKey
from core.repositories._rows import to_dataclass
from core.sql import Prebuilt, run

_k = t.keys


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A key found by its blind index."""

    id: int
    status: KeyStatus


@dataclass(frozen=True, slots=True)
class KeyCount:
    """How many keys of a product are in one status."""

    product_id: int
    status: KeyStatus
    count: int


@dataclass(frozen=True, slots=True)
class KeyToReseal:
    """A stored key with the vault key id it is encrypted under."""

    id: int
    product_id: int
    blind_index: bytes
    ciphertext: bytes
    kid: str


class KeyRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    _Q_RESERVE = Prebuilt(
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

    def reserve(self, product_id: int, order_id: int, n: int) -> list[int]:
        """Move up to ``n`` available keys of the product to ``reserved`` for the order, oldest first.

        On PostgreSQL the picked rows are locked with SKIP LOCKED, so concurrent buyers take different
        keys instead of queueing; the status guard in the UPDATE makes a lost race change nothing. The
        caller checks that exactly ``n`` ids came back.
        """
        res = run(self.conn, self._Q_RESERVE, {"b_pid": product_id, "b_n": n, "b_oid": order_id})
        return list(res.scalars().all())

    _Q_MARK_SOLD = Prebuilt(
        update(_k)
        .where(_k.c.order_id == bindparam("b_oid"), _k.c.status == KeyStatus.RESERVED.value)
        .values(status=KeyStatus.SOLD.value, sold_at=bindparam("b_now"))
        .returning(_k.c.id)
    )

    def mark_sold(self, order_id: int, now: datetime) -> list[int]:
        return list((run(self.conn, self._Q_MARK_SOLD, {"b_oid": order_id, "b_now": now})).scalars().all())

    def release_for_orders(self, order_ids: Sequence[int]) -> list[int]:
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
        return list((self.conn.execute(stmt)).scalars().all())

    def take_back_sold(self, order_id: int, *, void: bool) -> list[int]:
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
        return list((self.conn.execute(stmt)).scalars().all())

    _Q_SEALED_FOR_ORDER = Prebuilt(
        select(_k.c.id, _k.c.product_id, _k.c.blind_index, _k.c.ciphertext)
        .where(
            _k.c.order_id == bindparam("b_oid"),
            or_(_k.c.status == KeyStatus.SOLD.value, _k.c.status == KeyStatus.VOID.value),
        )
        .union_all(
            select(_k.c.id, _k.c.product_id, _k.c.blind_index, _k.c.ciphertext)
            .join(t.order_shared_keys, t.order_shared_keys.c.key_id == _k.c.id)
            .where(t.order_shared_keys.c.order_id == bindparam("b_oid"))
        )
        .order_by("id")
    )

    def sealed_for_order(self, order_id: int) -> list[SealedKey]:
        """The keys an order holds or was given, as stored."""
        rows = run(self.conn, self._Q_SEALED_FOR_ORDER, {"b_oid": order_id}).all()
        return [SealedKey(r[0], r[1], r[2], r[3]) for r in rows]

    _Q_CURRENT_SHARED = Prebuilt(
        select(_k.c.id)
        .where(_k.c.product_id == bindparam("b_pid"), _k.c.status == KeyStatus.SHARED.value)
        .order_by(_k.c.id.desc())
        .limit(1)
    )

    def current_shared_key(self, product_id: int) -> int | None:
        return (run(self.conn, self._Q_CURRENT_SHARED, {"b_pid": product_id})).scalar()

    def retire_shared(self, product_id: int) -> int:
        k = t.keys
        res = self.conn.execute(
            update(k)
            .where(k.c.product_id == product_id, k.c.status == KeyStatus.SHARED)
            .values(status=KeyStatus.RETIRED)
        )
        return res.rowcount

    def add_one(self, **values: Any) -> int:
        res = self.conn.execute(insert(t.keys).values(**values).returning(t.keys.c.id))
        return int(res.scalar_one())

    def find_by_index(self, product_id: int, blind_index: bytes) -> KeyRef | None:
        k = t.keys
        q = select(k.c.id, k.c.status).where(k.c.product_id == product_id, k.c.blind_index == blind_index)
        r = (self.conn.execute(q)).first()
        return KeyRef(r.id, KeyStatus(r.status)) if r else None

    def link_shared(self, order_id: int, key_id: int) -> None:
        self.conn.execute(insert(t.order_shared_keys).values(order_id=order_id, key_id=key_id))

    def count_by_status(self, product_id: int | None = None) -> list[KeyCount]:
        """Keys per product and status (statuses a product has none of are left out)."""
        k = t.keys
        q = select(k.c.product_id, k.c.status, func.count()).group_by(k.c.product_id, k.c.status)
        if product_id is not None:
            q = q.where(k.c.product_id == product_id)
        return [KeyCount(r[0], KeyStatus(r[1]), r[2]) for r in (self.conn.execute(q)).all()]

    def available(self, product_id: int) -> int:
        k = t.keys
        q = (
            select(func.count())
            .select_from(k)
            .where(k.c.product_id == product_id, k.c.status == KeyStatus.AVAILABLE)
        )
        return int((self.conn.execute(q)).scalar_one())

    def available_by_product(self) -> dict[int, int]:
        k = t.keys
        q = (
            select(k.c.product_id, func.count())
            .where(k.c.status == KeyStatus.AVAILABLE.value)
            .group_by(k.c.product_id)
        )
        return {r[0]: r[1] for r in (self.conn.execute(q)).all()}

    # ------------------------------------------------------------ staff's work on stock: void, export

    def status_of(self, product_id: int, key_id: int) -> KeyStatus | None:
        k = t.keys
        q = select(k.c.status).where(k.c.id == key_id, k.c.product_id == product_id)
        status = self.conn.execute(q).scalar()
        return KeyStatus(status) if status is not None else None

    def void_available(
        self, product_id: int, *, key_id: int | None = None, import_id: int | None = None
    ) -> int:
        """Void the product's keys still in stock: one key (``key_id``) or an import's (``import_id``).
        Reserved, sold and already void keys are left as they are. Returns how many were voided."""
        if (key_id is None) == (import_id is None):
            raise ValueError("void one key or one import's keys")
        k = t.keys
        which = k.c.id == key_id if key_id is not None else k.c.import_id == import_id
        stmt = (
            update(k)
            .where(k.c.product_id == product_id, k.c.status == KeyStatus.AVAILABLE, which)
            .values(status=KeyStatus.VOID)
        )
        return int(self.conn.execute(stmt).rowcount)

    def count_by_import(self, product_id: int, import_id: int) -> dict[KeyStatus, int]:
        """The product's keys an import brought, per status (statuses with none left out)."""
        k = t.keys
        q = (
            select(k.c.status, func.count())
            .where(k.c.product_id == product_id, k.c.import_id == import_id)
            .group_by(k.c.status)
        )
        return {KeyStatus(r[0]): r[1] for r in self.conn.execute(q).all()}

    def sealed_available(self, product_id: int) -> list[SealedKey]:
        """The product's keys in stock, as stored, in the order they would be sold."""
        k = t.keys
        q = (
            select(k.c.id, k.c.product_id, k.c.blind_index, k.c.ciphertext)
            .where(k.c.product_id == product_id, k.c.status == KeyStatus.AVAILABLE)
            .order_by(k.c.id)
        )
        return [SealedKey(r[0], r[1], r[2], r[3]) for r in self.conn.execute(q).all()]

    def count_not_under(self, kid: str) -> int:
        q = select(func.count()).select_from(t.keys).where(t.keys.c.kid != kid)
        return int((self.conn.execute(q)).scalar_one())

    def count_all(self) -> int:
        return int((self.conn.execute(select(func.count()).select_from(t.keys))).scalar_one())

    def batch_not_under(self, kid: str, after_id: int, limit: int) -> list[KeyToReseal]:
        k = t.keys
        q = (
            select(k.c.id, k.c.product_id, k.c.blind_index, k.c.ciphertext, k.c.kid)
            .where(k.c.id > after_id, k.c.kid != kid)
            .order_by(k.c.id)
            .limit(limit)
        )
        return [to_dataclass(KeyToReseal, r) for r in (self.conn.execute(q)).all()]

    def reseal(self, key_id: int, old_kid: str, new_kid: str, ciphertext: bytes) -> int:
        k = t.keys
        res = self.conn.execute(
            update(k).where(k.c.id == key_id, k.c.kid == old_kid).values(kid=new_kid, ciphertext=ciphertext)
        )
        return res.rowcount
