"""What the low-stock alerts last said per product (``stock_alerts``): ``low`` or ``out``; no row, above
the threshold. Every change is guarded by the level it expects, and reports whether it happened: of two
schedulers seeing the same crossing, one changes the row (and alerts), the other changes nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from core import tables as t
from core.repositories._rows import dialect_insert


class StockAlertRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def levels(self) -> dict[int, str]:
        """Product id -> the level last alerted (products above their threshold have none)."""
        a = t.stock_alerts
        return {pid: level for pid, level in self.conn.execute(select(a.c.product_id, a.c.level))}

    def insert(self, product_id: int, level: str, now: datetime) -> bool:
        """Record ``level`` for a product that had no row; False when one was there (alerted already)."""
        a = t.stock_alerts
        stmt = (
            dialect_insert(self.dialect, a)
            .values(product_id=product_id, level=level, alerted_at=now)
            .on_conflict_do_nothing(index_elements=["product_id"])
            .returning(a.c.product_id)
        )
        return self.conn.execute(stmt).first() is not None

    def move(self, product_id: int, old: str, new: str, now: datetime) -> bool:
        """``old`` becomes ``new``; False when the row no longer says ``old``."""
        a = t.stock_alerts
        stmt = (
            update(a)
            .where(a.c.product_id == product_id, a.c.level == old)
            .values(level=new, alerted_at=now)
            .returning(a.c.product_id)
        )
        return self.conn.execute(stmt).first() is not None

    def clear(self, product_id: int, old: str) -> bool:
        """Forget the alert (restocked above the threshold: the next crossing alerts again); False when
        the row no longer says ``old``."""
        a = t.stock_alerts
        stmt = delete(a).where(a.c.product_id == product_id, a.c.level == old).returning(a.c.product_id)
        return self.conn.execute(stmt).first() is not None
