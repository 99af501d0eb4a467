"""The official account's access_token (``wechat_tokens``), one row per AppID, and the lease of the one
instance renewing it. The lease is taken by a conditional UPDATE: the transaction whose statement changed
the row holds it; on PostgreSQL a concurrent one waits for the first to commit, re-reads the row and finds
the lease taken; on SQLite writers take turns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, or_, select, update

from core import tables as t
from core.repositories._rows import dialect_insert, to_dataclass


@dataclass(frozen=True, slots=True)
class StoredToken:
    app_id: str
    token: str | None  # None: never fetched, or WeChat rejected it
    expires_at: datetime | None
    refresh_at: datetime | None  # when it is due for renewal (about 5 minutes before it expires)
    lease_holder: str | None
    lease_until: datetime | None

    def usable(self, now: datetime) -> bool:
        """WeChat still takes it."""
        return self.token is not None and self.expires_at is not None and now < self.expires_at

    def fresh(self, now: datetime) -> bool:
        """Usable and not yet due for renewal."""
        return self.usable(now) and self.refresh_at is not None and now < self.refresh_at


class WechatTokenRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def get(self, app_id: str) -> StoredToken | None:
        w = t.wechat_tokens
        r = self.conn.execute(select(w).where(w.c.app_id == app_id)).first()
        return to_dataclass(StoredToken, r) if r else None

    def ensure(self, app_id: str, now: datetime) -> None:
        """The AppID's row, empty if it had none (the lease is a column of it)."""
        w = t.wechat_tokens
        stmt = (
            dialect_insert(self.dialect, w)
            .values(app_id=app_id, updated_at=now)
            .on_conflict_do_nothing(index_elements=["app_id"])
        )
        self.conn.execute(stmt)

    def take_lease(self, app_id: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take the renewal lease when the token is missing, due or expired and no lease is running: True
        when this statement took it."""
        w = t.wechat_tokens
        stmt = (
            update(w)
            .where(
                w.c.app_id == app_id,
                or_(w.c.lease_until.is_(None), w.c.lease_until <= now),
                or_(
                    w.c.token.is_(None),
                    w.c.refresh_at.is_(None),
                    w.c.refresh_at <= now,
                    w.c.expires_at <= now,
                ),
            )
            .values(lease_holder=holder, lease_until=until, updated_at=now)
        )
        return self.conn.execute(stmt).rowcount == 1

    def put(self, app_id: str, token: str, expires_at: datetime, refresh_at: datetime, now: datetime) -> None:
        w = t.wechat_tokens
        self.conn.execute(
            update(w)
            .where(w.c.app_id == app_id)
            .values(token=token, expires_at=expires_at, refresh_at=refresh_at, updated_at=now)
        )

    def release(self, app_id: str, holder: str, now: datetime) -> None:
        """End ``holder``'s lease (a lease another instance took over after it ran out stays)."""
        w = t.wechat_tokens
        self.conn.execute(
            update(w)
            .where(w.c.app_id == app_id, w.c.lease_holder == holder)
            .values(lease_holder=None, lease_until=None, updated_at=now)
        )

    def forget(self, app_id: str, token: str, now: datetime) -> bool:
        """Drop ``token`` if it is still the stored one (not a newer one another instance already stored):
        True if dropped."""
        w = t.wechat_tokens
        stmt = (
            update(w)
            .where(w.c.app_id == app_id, w.c.token == token)
            .values(token=None, expires_at=None, refresh_at=None, updated_at=now)
        )
        return self.conn.execute(stmt).rowcount == 1
