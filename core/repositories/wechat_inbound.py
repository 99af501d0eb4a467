"""WeChat pushes already taken (``wechat_inbound``): one INSERT on the primary key per push, as in
``job_claims``. On PostgreSQL a second insert of the same key waits for the first transaction to end, then
finds it taken; on SQLite writers take turns."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from sqlalchemy import Connection, delete

from core import tables as t
from core.repositories._rows import dialect_insert
from core.sql import Prebuilt, run


class WechatInboundRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    # Built once (every push runs it, and building it cost as much as running it):
    # RETURNING, not rowcount: what psycopg reports for an upsert varies.
    _Q_TAKE: ClassVar[dict[str, Prebuilt]] = {
        d: Prebuilt(
            dialect_insert(d, t.wechat_inbound)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(t.wechat_inbound.c.dedupe_key)
        )
        for d in ("sqlite", "postgresql")
    }

    def take(self, dedupe_key: str, now: datetime) -> bool:
        """True when this transaction took the push, False when another already had."""
        taken = run(self.conn, self._Q_TAKE[self.dialect], {"dedupe_key": dedupe_key, "received_at": now})
        return taken.first() is not None

    def forget_before(self, before: datetime) -> int:
        """Delete the rows of pushes received before ``before`` (WeChat stops retrying within a minute)."""
        w = t.wechat_inbound
        return self.conn.execute(delete(w).where(w.c.received_at < before)).rowcount or 0
