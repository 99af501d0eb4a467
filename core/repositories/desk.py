"""The back office's reads of orders and buyers: orders found by buyer, by import batch or by what needs an
admin, each with its product and buyer; a buyer's order count and spend; an order's audit trail.

Every list takes an operator's scope (products, categories; both empty: the whole shop) and applies it in
SQL, so an order outside it is never read, let alone shown. Lists are newest first by order id and are read
a page at a time by keyset (``before``/``after`` an order id), so orders placed meanwhile never shift a
later page: no order is listed twice or skipped while paging."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, and_, exists, false, func, or_, select

from core import tables as t
from core.models import DeliveryKind, Order, OrderStatus
from core.repositories._rows import part, to_order

_o, _p, _u = t.orders, t.products, t.users

ListKind = Literal["pending", "buyer", "import"]  # what a list is; its key: 0, a shop user id, an import id

# Orders whose money the shop keeps: what a buyer has spent.
SPENT = (OrderStatus.PAID, OrderStatus.DELIVERED)


@dataclass(frozen=True, slots=True)
class DeskLine:
    """An order as the back office lists it: with its product's name and who bought it."""

    order: Order
    product_name: str
    buyer_channel: str
    buyer_external_id: str


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One audit row about an order."""

    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BuyerTotals:
    orders: int  # every order the buyer placed, whatever became of it
    spent: dict[str, int]  # currency -> minor units, paid and delivered orders


@dataclass(frozen=True, slots=True)
class Scope:
    """Which products an admin reaches: ``None`` for both is the whole shop."""

    products: Collection[int] = ()
    categories: Collection[int] = ()

    @property
    def whole_shop(self) -> bool:
        return not self.products and not self.categories


class DeskRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def _scoped(self, where: Any, scope: Scope) -> Any:
        cond = [where]
        if not scope.whole_shop:
            cond.append(
                or_(
                    _o.c.product_id.in_(list(scope.products)) if scope.products else false(),
                    _p.c.category_id.in_(list(scope.categories)) if scope.categories else false(),
                )
            )
        return and_(*cond)

    def _lines(self, where: Any, scope: Scope, limit: int, before: int = 0, after: int = 0) -> list[DeskLine]:
        """Up to ``limit`` orders matching ``where`` in ``scope``: newest first, older than order ``before``
        (0: from the newest); or, when ``after`` is given, the ones just newer than it, OLDEST first."""
        cond = self._scoped(where, scope)
        if after:
            cond, order = and_(cond, _o.c.id > after), [_o.c.id.asc()]
        else:
            cond, order = (and_(cond, _o.c.id < before) if before else cond), [_o.c.id.desc()]
        q = (
            select(_o, _p.c.name.label("product_name"), _u.c.channel, _u.c.external_id)
            .join_from(_o, _p, _p.c.id == _o.c.product_id)
            .join_from(_o, _u, _u.c.id == _o.c.user_id)
            .where(cond)
            .order_by(*order)
            .limit(limit)
        )
        return [
            DeskLine(to_order(part(r, _o)), r.product_name, r.channel, r.external_id)
            for r in self.conn.execute(q).all()
        ]

    def _where(self, kind: ListKind, key: int) -> Any:
        if kind == "buyer":
            return _o.c.user_id == key
        if kind == "import":
            k = t.keys  # orders that were given a key of this import batch
            return exists().where(k.c.order_id == _o.c.id, k.c.import_id == key)
        # Paid manual-delivery orders waiting for an admin, and orders with money still to give back (a
        # refund requested and not yet done: waiting, failed, or to be made by hand; or a second charge).
        pay = t.payments
        owed = exists().where(pay.c.order_id == _o.c.id, pay.c.status == "refund_due")
        return or_(
            and_(_o.c.status == OrderStatus.PAID.value, _p.c.delivery_kind == DeliveryKind.MANUAL.value),
            _o.c.status == OrderStatus.REFUND_DUE.value,
            owed,
        )

    def listing(
        self, kind: ListKind, key: int, scope: Scope, limit: int, *, before: int = 0, after: int = 0
    ) -> list[DeskLine]:
        """A page of one list (see ``_lines`` for ``before``/``after`` and the order of the result)."""
        return self._lines(self._where(kind, key), scope, limit, before, after)

    def count(self, kind: ListKind, key: int, scope: Scope) -> int:
        """How many orders the list holds now (counted in SQL: no row is read)."""
        q = (
            select(func.count())
            .select_from(_o.join(_p, _p.c.id == _o.c.product_id))
            .where(self._scoped(self._where(kind, key), scope))
        )
        return int(self.conn.execute(q).scalar_one())

    def by_buyer(self, user_id: int, scope: Scope, limit: int) -> list[DeskLine]:
        return self.listing("buyer", user_id, scope, limit)

    def by_import(self, import_id: int, scope: Scope, limit: int) -> list[DeskLine]:
        """Orders that were given a key of this import batch."""
        return self.listing("import", import_id, scope, limit)

    def needing_attention(self, scope: Scope, limit: int) -> list[DeskLine]:
        """Paid manual-delivery orders waiting for an admin, and orders with money still to give back."""
        return self.listing("pending", 0, scope, limit)

    def buyer_totals(self, user_id: int) -> BuyerTotals:
        """How many orders the buyer placed, and what they spent per currency (paid and delivered orders)."""
        count = self.conn.execute(select(func.count()).where(_o.c.user_id == user_id)).scalar_one()
        q = (
            select(_o.c.currency, func.sum(_o.c.amount))
            .where(_o.c.user_id == user_id, _o.c.status.in_([s.value for s in SPENT]))
            .group_by(_o.c.currency)
            .order_by(_o.c.currency)
        )
        return BuyerTotals(int(count), {cur: int(total) for cur, total in self.conn.execute(q).all()})

    def trail(self, order_id: int, limit: int) -> list[TrailEntry]:
        """The order's latest audit rows, oldest first."""
        a = t.audit_log
        q = (
            select(a.c.at, a.c.actor, a.c.action, a.c.detail)
            .where(a.c.order_id == order_id)
            .order_by(a.c.id.desc())
            .limit(limit)
        )
        rows = [TrailEntry(r[0], r[1], r[2], r[3] or {}) for r in self.conn.execute(q).all()]
        return rows[::-1]
