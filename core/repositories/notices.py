"""Payment notices as received, before (and until) they are processed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from core import tables as t
from core.models import PaymentNotice
from core.repositories._rows import dialect_insert, to_dataclass


class PaymentNoticeRepo:
    """Payment notices as received, before (and until) they are processed."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def add_once(self, **values: Any) -> int | None:
        """Insert a notice unless its (provider, charge_id) exists. Its id if inserted, else None."""
        n = t.payment_notices
        stmt = (
            dialect_insert(self.dialect, n)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["provider", "charge_id"])
            .returning(n.c.id)
        )
        return (self.conn.execute(stmt)).scalar()

    def id_of(self, provider: str, charge_id: str) -> int | None:
        n = t.payment_notices
        q = select(n.c.id).where(n.c.provider == provider, n.c.charge_id == charge_id)
        return (self.conn.execute(q)).scalar()

    def get(self, notice_id: int, *, lock: bool = False) -> PaymentNotice | None:
        q = select(t.payment_notices).where(t.payment_notices.c.id == notice_id)
        r = (self.conn.execute(q.with_for_update() if lock else q)).first()
        return to_dataclass(PaymentNotice, r) if r else None

    def due(self, now: datetime, limit: int) -> list[int]:
        n = t.payment_notices
        q = (
            select(n.c.id)
            .where(n.c.status == "pending", n.c.next_attempt_at <= now)
            .order_by(n.c.next_attempt_at, n.c.id)
            .limit(limit)
        )
        return list((self.conn.execute(q)).scalars().all())

    def mark_done(self, notice_id: int, now: datetime) -> int:
        n = t.payment_notices
        res = self.conn.execute(
            update(n)
            .where(n.c.id == notice_id, n.c.status == "pending")
            .values(status="done", processed_at=now)
        )
        return res.rowcount

    def reschedule(self, notice_id: int, at: datetime, error: str) -> int:
        """A failed attempt: try again at ``at``. Returns the attempts so far (0 if no longer pending)."""
        n = t.payment_notices
        res = self.conn.execute(
            update(n)
            .where(n.c.id == notice_id, n.c.status == "pending")
            .values(attempts=n.c.attempts + 1, next_attempt_at=at, last_error=error[:255])
            .returning(n.c.attempts)
        )
        return int(res.scalar() or 0)
