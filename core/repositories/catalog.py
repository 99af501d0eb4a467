"""Categories and products."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from core import tables as t
from core.models import Category, KeyStatus, OrderStatus, Product
from core.repositories._rows import to_product
from core.sql import Prebuilt, run


class CatalogRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def add_category(self, **values: Any) -> int:
        res = self.conn.execute(insert(t.categories).values(**values).returning(t.categories.c.id))
        return int(res.scalar_one())

    def categories(self, *, active_only: bool) -> list[Category]:
        q = select(t.categories).order_by(t.categories.c.position, t.categories.c.id)
        if active_only:
            q = q.where(t.categories.c.active)
        return [
            Category(r.id, r.name, r.description, r.position, r.active) for r in (self.conn.execute(q)).all()
        ]

    def category(self, category_id: int) -> Category | None:
        r = self.conn.execute(select(t.categories).where(t.categories.c.id == category_id)).first()
        return Category(r.id, r.name, r.description, r.position, r.active) if r else None

    def update_category(self, category_id: int, **values: Any) -> int:
        q = update(t.categories).where(t.categories.c.id == category_id).values(**values)
        return self.conn.execute(q).rowcount

    def category_exists(self, category_id: int) -> bool:
        q = select(t.categories.c.id).where(t.categories.c.id == category_id)
        return (self.conn.execute(q)).first() is not None

    def add_product(self, **values: Any) -> int:
        res = self.conn.execute(insert(t.products).values(**values).returning(t.products.c.id))
        return int(res.scalar_one())

    def update_product(self, product_id: int, **values: Any) -> int:
        res = self.conn.execute(update(t.products).where(t.products.c.id == product_id).values(**values))
        return res.rowcount

    _Q_PRODUCT = Prebuilt(select(t.products).where(t.products.c.id == bindparam("b_id")))
    _Q_PRODUCT_LOCK = Prebuilt(_Q_PRODUCT.stmt.with_for_update())

    def product(self, product_id: int, *, lock: bool = False) -> Product | None:
        q = self._Q_PRODUCT_LOCK if lock else self._Q_PRODUCT
        r = (run(self.conn, q, {"b_id": product_id})).first()
        return to_product(r) if r else None

    def open_orders(self, product_id: int) -> int:
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
        return int((self.conn.execute(q)).scalar_one())

    def products(self, *, active_only: bool, category_id: int | None = None) -> list[Product]:
        q = select(t.products).order_by(t.products.c.id)
        if active_only:
            q = q.where(t.products.c.active)
        if category_id is not None:
            q = q.where(t.products.c.category_id == category_id)
        return [to_product(r) for r in (self.conn.execute(q)).all()]
