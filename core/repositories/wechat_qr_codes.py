"""The official account's permanent QR codes (``wechat_qr_codes``), one per scene, made once. A scene is
claimed by inserting its row without a URL; a claim whose maker never filled it in (a crash, WeChat away)
can be taken over once it is stale, by a conditional UPDATE only one instance's statement wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from core import tables as t
from core.repositories._rows import dialect_insert, to_dataclass


@dataclass(frozen=True, slots=True)
class QrCode:
    app_id: str
    scene: str
    url: str | None  # None while the instance that claimed the scene is asking WeChat for it
    claimed_at: datetime
    created_at: datetime | None


class WechatQrRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def get(self, app_id: str, scene: str) -> QrCode | None:
        q = t.wechat_qr_codes
        r = self.conn.execute(select(q).where(q.c.app_id == app_id, q.c.scene == scene)).first()
        return to_dataclass(QrCode, r) if r else None

    def claim(self, app_id: str, scene: str, now: datetime, stale_before: datetime) -> bool:
        """Take the making of ``scene``'s code: True when its row is new, or was an unfilled claim made
        before ``stale_before`` (now this one's, dated ``now``)."""
        q = t.wechat_qr_codes
        stmt = (
            dialect_insert(self.dialect, q)
            .values(app_id=app_id, scene=scene, claimed_at=now)
            .on_conflict_do_nothing(index_elements=["app_id", "scene"])
            .returning(q.c.scene)  # RETURNING, not rowcount: what psycopg reports for an upsert varies
        )
        if self.conn.execute(stmt).first() is not None:
            return True
        retake = (
            update(q)
            .where(q.c.app_id == app_id, q.c.scene == scene, q.c.url.is_(None), q.c.claimed_at < stale_before)
            .values(claimed_at=now)
        )
        return self.conn.execute(retake).rowcount == 1

    def fill(self, app_id: str, scene: str, url: str, now: datetime) -> None:
        q = t.wechat_qr_codes
        self.conn.execute(
            update(q)
            .where(q.c.app_id == app_id, q.c.scene == scene, q.c.url.is_(None))
            .values(url=url, created_at=now)
        )

    def unclaim(self, app_id: str, scene: str, claimed_at: datetime) -> None:
        """Give up the claim dated ``claimed_at`` (its maker failed), unless another took it over since."""
        q = t.wechat_qr_codes
        self.conn.execute(
            delete(q).where(
                q.c.app_id == app_id, q.c.scene == scene, q.c.url.is_(None), q.c.claimed_at == claimed_at
            )
        )
