"""Payment notices as received, before (and until) they are processed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam, select, update

from core import tables as t
from core.models import PaymentNotice
from core.repositories._rows import dialect_insert, to_dataclass
from core.sql import Prebuilt, run

_n = t.payment_notices


class PaymentNoticeRepo:
    """Payment notices as received, before (and until) they are processed."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    _Q_NOTICE_INSERT_ONCE: ClassVar[dict[str, Prebuilt]] = {
        d: Prebuilt(
            dialect_insert(d, _n)
            .on_conflict_do_nothing(index_elements=["provider", "charge_id"])
            .returning(_n.c.id)
        )
        for d in ("sqlite", "postgresql")
    }

    def add_once(self, **values: Any) -> int | None:
        """Insert a notice unless its (provider, charge_id) exists. Its id if inserted, else None."""
        return run(self.conn, self._Q_NOTICE_INSERT_ONCE[self.dialect], values).scalar()

    def id_of(self, provider: str, charge_id: str) -> int | None:
        n = t.payment_notices
        q = select(n.c.id).where(n.c.provider == provider, n.c.charge_id == charge_id)
        return (self.conn.execute(q)).scalar()

    _Q_NOTICE = Prebuilt(select(_n).where(_n.c.id == bindparam("b_id")))
    _Q_NOTICE_LOCK = Prebuilt(_Q_NOTICE.stmt.with_for_update())

    def get(self, notice_id: int, *, lock: bool = False) -> PaymentNotice | None:
        r = run(self.conn, self._Q_NOTICE_LOCK if lock else self._Q_NOTICE, {"b_id": notice_id}).first()
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

    _Q_NOTICE_DONE = Prebuilt(
        update(_n).where(_n.c.id == bindparam("b_id"), _n.c.status == "pending").values(status="done")
    )

    def mark_done(self, notice_id: int, now: datetime) -> int:
        return run(self.conn, self._Q_NOTICE_DONE, {"b_id": notice_id, "processed_at": now}).rowcount

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
