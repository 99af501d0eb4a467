"""WeChat users' customer-service windows (``wechat_windows``), one row per user, written by upserts on
the primary key: an opening (the user wrote, tapped, paid), a refusal (``close``), messages counted.

An opening and a refusal of the same user race only on that one row: on PostgreSQL the upsert locks it,
so whichever comes second sees the first; on SQLite writers take turns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from core import tables as t
from core.repositories._rows import dialect_insert, to_dataclass
from core.sql import Prebuilt, run
from core.windows import EVENT, MESSAGE, OPENINGS, PAYMENT, WechatWindow

_AT = {MESSAGE: "message_at", EVENT: "event_at", PAYMENT: "paid_at"}
_USED = {MESSAGE: "message_used", EVENT: "event_used"}


def _opening(dialect: str, kind: str) -> Prebuilt:
    """The upsert of an opening of ``kind``: the row's opening time, its count back to 0 and ``closed_at``
    cleared, whatever the row held (the values are the statement's parameters)."""
    columns = [_AT[kind], "closed_at", *([_USED[kind]] if kind in _USED else [])]
    stmt = dialect_insert(dialect, t.wechat_windows)
    return Prebuilt(
        stmt.on_conflict_do_update(index_elements=["user_id"], set_={c: stmt.excluded[c] for c in columns})
    )


# Built once: every push that opens a window runs one (SQLAlchemy compiled this upsert anew each time).
_OPEN = {(d, kind): _opening(d, kind) for d in ("sqlite", "postgresql") for kind in OPENINGS}


class WechatWindowRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def many(self, user_ids: Iterable[int]) -> dict[int, WechatWindow]:
        """The windows known for ``user_ids`` (a user the shop knows nothing about has none)."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        w = t.wechat_windows
        rows = self.conn.execute(select(w).where(w.c.user_id.in_(ids))).all()
        return {r.user_id: to_dataclass(WechatWindow, r) for r in rows}

    def open(self, user_id: int, kind: str, now: datetime) -> None:
        """The user opened the window (``kind``: one of ``OPENINGS``) at ``now``: its count starts again,
        and whatever was refused before is not any more."""
        if kind not in OPENINGS:
            raise ValueError(f"a window opens by one of {OPENINGS}, not {kind!r}")
        values: dict[str, Any] = {"user_id": user_id, _AT[kind]: now, "closed_at": None}
        if kind in _USED:
            values[_USED[kind]] = 0
        run(self.conn, _OPEN[self.dialect, kind], values)

    def close(self, user_id: int, now: datetime, *, unless_opened_after: datetime) -> bool:
        """WeChat refused a message (or the window ran out) at ``now``: closed until the next opening.
        Not when the user opened the window after ``unless_opened_after`` (when the refused message was
        tried): that opening is newer than the refusal. True when closed."""
        w = t.wechat_windows
        after = unless_opened_after
        not_reopened = and_(
            *(or_(w.c[col].is_(None), w.c[col] <= after) for col in ("message_at", "event_at", "paid_at"))
        )
        stmt = (
            dialect_insert(self.dialect, w)
            .values(user_id=user_id, closed_at=now)
            .on_conflict_do_update(index_elements=["user_id"], set_={"closed_at": now}, where=not_reopened)
            .returning(w.c.user_id)  # RETURNING, not rowcount: what drivers report for an upsert varies
        )
        return self.conn.execute(stmt).first() is not None

    def count_sent(self, user_id: int, kind: str, opened_at: datetime, n: int) -> None:
        """``n`` messages went out within the opening of ``kind`` made at ``opened_at``; not counted when
        the user opened the window again meanwhile (the new opening's count starts at 0)."""
        w = t.wechat_windows
        used = w.c[_USED[kind]]
        q = update(w).where(w.c.user_id == user_id, w.c[_AT[kind]] == opened_at).values({used: used + n})
        self.conn.execute(q)
