"""WeChat pushes already taken (``wechat_inbound``): one INSERT on the primary key per push, as in
``job_claims``. On PostgreSQL a second insert of the same key waits for the first transaction to end, then
finds it taken; on SQLite writers take turns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete

from core import tables as t
from core.repositories._rows import dialect_insert


class WechatInboundRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def take(self, dedupe_key: str, now: datetime) -> bool:
        """True when this transaction took the push, False when another already had."""
        w = t.wechat_inbound
        stmt = (
            dialect_insert(self.dialect, w)
            .values(dedupe_key=dedupe_key, received_at=now)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(w.c.dedupe_key)  # RETURNING, not rowcount: what psycopg reports for an upsert varies
        )
        return self.conn.execute(stmt).first() is not None

    def forget_before(self, before: datetime) -> int:
        """Delete the rows of pushes received before ``before`` (WeChat stops retrying within a minute)."""
        w = t.wechat_inbound
        return self.conn.execute(delete(w).where(w.c.received_at < before)).rowcount or 0
