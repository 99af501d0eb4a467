"""The outbox: messages written in the transaction of the change they report, claimed by senders."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    LargeBinary,
    Text,
    bindparam,
    cast,
    delete,
    insert,
    or_,
    select,
    update,
)

from core import tables as t
from core.repositories._rows import to_dataclass
from core.sql import Prebuilt, run, run_many


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    user_id: int
    kind: str
    payload: dict[str, Any]
    status: str  # pending | sent | failed | cancelled | parked
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    progress: int = 0


@dataclass(frozen=True, slots=True)
class ClaimedOutboxRow:
    """A message leased to a channel's sender, with where to send it. Its fields come as the stored JSON
    text: one damaged row must not make the rows claimed with it unreadable."""

    id: int
    user_id: int
    kind: str
    payload_json: bytes | str  # bytes on SQLite, whose text may hold anything; text on PostgreSQL
    attempts: int
    channel: str
    external_id: str  # the chat to send to
    language: str | None
    progress: int = 0  # steps already done (a message sent in several: see ``reschedule``)


class OutboxRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    _Q_OUTBOX_INSERT = Prebuilt(insert(t.outbox))

    def add(self, user_id: int, kind: str, payload: dict[str, Any], now: datetime) -> None:
        values = {"user_id": user_id, "kind": kind, "payload": payload, "status": "pending"}
        run(self.conn, self._Q_OUTBOX_INSERT, {**values, "next_attempt_at": now, "created_at": now})

    def add_many(self, messages: Sequence[tuple[int, str, dict[str, Any]]], now: datetime) -> None:
        """``add`` for many ``(user_id, kind, payload)`` in one driver call (a reminder job's batch)."""
        run_many(
            self.conn,
            self._Q_OUTBOX_INSERT,
            [
                {
                    "user_id": user_id,
                    "kind": kind,
                    "payload": payload,
                    "status": "pending",
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for user_id, kind, payload in messages
            ],
        )

    def pending(self, limit: int = 100) -> list[OutboxRow]:
        q = select(t.outbox).where(t.outbox.c.status == "pending").order_by(t.outbox.c.id).limit(limit)
        return [to_dataclass(OutboxRow, r) for r in (self.conn.execute(q)).all()]

    def claim(
        self,
        channel: str,
        kinds: Collection[str],
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        broadcast_id: int | None = None,
    ) -> list[ClaimedOutboxRow]:
        """Take a channel's due messages of ``kinds`` (the types this process can read) for sending: their
        next attempt moves to ``lease_until``, so another sender (or this one after a crash) picks them up
        only once the lease has run out. A kind this process does not know stays for one that does (a
        newer version running beside it).

        Each lane on its own, through ``ix_outbox_broadcast_status_next``: the shop's messages
        (``broadcast_id`` None), oldest first, so 100,000 waiting broadcast messages cost the shop's lane
        nothing; or one broadcast's, in the index's order (when due), so taking 20 of 100,000 sorts none."""
        o, u = t.outbox, t.users
        lane: ColumnElement[bool]
        order: tuple[Column[Any], ...]
        if broadcast_id is None:
            lane, order = o.c.broadcast_id.is_(None), (o.c.id,)
        else:
            lane, order = o.c.broadcast_id == broadcast_id, (o.c.next_attempt_at, o.c.id)
        pick = (
            select(o.c.id)
            .join_from(o, u, u.c.id == o.c.user_id)
            .where(
                lane,
                o.c.status == "pending",
                o.c.next_attempt_at <= now,
                u.c.channel == channel,
                o.c.kind.in_(sorted(kinds)),
            )
            .order_by(*order)
            .limit(limit)
            .with_for_update(of=o, skip_locked=True)
        )
        ids = list((self.conn.execute(pick)).scalars())
        if not ids:
            return []
        self.conn.execute(update(o).where(o.c.id.in_(ids)).values(next_attempt_at=lease_until))
        q = (
            select(
                o.c.id,
                o.c.user_id,
                o.c.kind,
                # SQLite hands back a TEXT that is not UTF-8 only as an error for the whole fetch: take
                # the bytes and let the reader decode each row. PostgreSQL keeps only valid UTF-8.
                (
                    cast(o.c.payload, LargeBinary) if self.dialect == "sqlite" else cast(o.c.payload, Text)
                ).label("payload_json"),
                o.c.attempts,
                u.c.channel,
                u.c.external_id,
                u.c.language,
                o.c.progress,
            )
            .join_from(o, u, u.c.id == o.c.user_id)
            .where(o.c.id.in_(ids))
            .order_by(o.c.id)
        )
        return [to_dataclass(ClaimedOutboxRow, r) for r in (self.conn.execute(q)).all()]

    # SET columns come from the parameters given with each execution.
    _Q_OUTBOX_FINISH = Prebuilt(update(t.outbox).where(t.outbox.c.id == bindparam("b_id")))

    def finish(self, message_id: int, status: str, now: datetime, error: str | None = None) -> None:
        values: dict[str, Any] = {"b_id": message_id, "status": status}
        values["last_error"] = error[:255] if error else None
        if status == "sent":
            values["sent_at"] = now
        run(self.conn, self._Q_OUTBOX_FINISH, values)

    def reschedule(self, message_id: int, at: datetime, error: str, progress: int | None = None) -> int:
        """Try again at ``at``; returns the number of attempts so far. ``progress``: the steps of a message
        sent in several that are done (a refund paid back, the first parts of a long text), so the next
        attempt goes on from there instead of doing them twice."""
        o = t.outbox
        values: dict[str, Any] = {
            "attempts": o.c.attempts + 1,
            "next_attempt_at": at,
            "last_error": error[:255],
        }
        if progress is not None:
            values["progress"] = progress
        res = self.conn.execute(
            update(o).where(o.c.id == message_id).values(**values).returning(o.c.attempts)
        )
        return int(res.scalar_one())

    def postpone(self, message_id: int, at: datetime, why: str, progress: int | None = None) -> None:
        """Due again at ``at`` without counting an attempt: nothing failed (a daily quota used up, a
        refund nobody can make yet)."""
        o = t.outbox
        values: dict[str, Any] = {"next_attempt_at": at, "last_error": why[:255]}
        if progress is not None:
            values["progress"] = progress
        self.conn.execute(update(o).where(o.c.id == message_id, o.c.status == "pending").values(**values))

    def set_progress(self, message_id: int, progress: int) -> None:
        o = t.outbox
        self.conn.execute(update(o).where(o.c.id == message_id).values(progress=progress))

    def park(self, message_id: int, why: str, progress: int) -> None:
        """Set a message aside until its user writes again (``release_parked``): not a failure, no
        attempt counted, not due (so neither claimed nor counted in the backlog)."""
        o = t.outbox
        q = update(o).where(o.c.id == message_id, o.c.status == "pending")
        self.conn.execute(q.values(status="parked", last_error=why[:255], progress=progress))

    # Built once: every WeChat push that opens a window runs it.
    _Q_RELEASE_PARKED = Prebuilt(
        update(t.outbox)
        .where(t.outbox.c.user_id == bindparam("b_uid"), t.outbox.c.status == "parked")
        .values(status="pending", next_attempt_at=bindparam("b_now"))
    )

    def release_parked(self, user_id: int, now: datetime) -> int:
        """Make the user's parked messages due now, in the order they were written (their ids); how
        many. One probe of ``ix_outbox_parked_user`` when there are none."""
        return int(run(self.conn, self._Q_RELEASE_PARKED, {"b_uid": user_id, "b_now": now}).rowcount or 0)

    def purge_sent(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` messages sent before ``before``; returns how many. A running broadcast's
        rows stay: its counts are read from them until it ends (then they are kept on the broadcast)."""
        o, b = t.outbox, t.broadcasts
        ended = select(b.c.id).where(b.c.status.in_(("done", "cancelled")))
        ids = (
            select(o.c.id)
            .where(
                o.c.status == "sent",
                o.c.sent_at < before,
                or_(o.c.broadcast_id.is_(None), o.c.broadcast_id.in_(ended)),
            )
            .order_by(o.c.id)
            .limit(limit)
        )
        return int(self.conn.execute(delete(o).where(o.c.id.in_(ids))).rowcount)
