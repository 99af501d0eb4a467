"""Broadcasts and their audiences. An audience is a condition on ``users`` evaluated by the database: the
recipients are counted there and copied into the outbox there (INSERT ... SELECT, a chunk at a time by
keyset over ``users.id``), never listed in Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)

from core import tables as t
from core.messages import Broadcast as BroadcastMessage
from core.repositories._rows import to_dataclass

BLOCKED_EARLIER = "403 blocked the bot earlier"  # an outbox row never tried: its user had blocked the bot


@dataclass(frozen=True, slots=True)
class Audience:
    """Who a broadcast goes to, among the users of ``channel``. A **buyer** is a user with at least one
    order that was paid (``paid_at`` set: paid, delivered, or since refunded) and who is not on the
    blocklist.

    - ``all``: every buyer;
    - ``product``: buyers with a paid order of ``product_id``;
    - ``active``: buyers with an order paid in the last ``days`` days."""

    kind: str  # all | product | active
    product_id: int | None = None
    days: int | None = None


@dataclass(frozen=True, slots=True)
class BroadcastRow:
    id: int
    channel: str
    audience: str
    product_id: int | None
    days: int | None
    text: str
    status: str  # draft | enqueuing | sending | cancelled | done
    created_by: str
    recipients: int
    enqueued_upto: int
    sent: int
    failed: int
    blocked: int
    cancelled: int
    progress_chat: str | None
    progress_message_id: int | None
    progress_language: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress_shown: str | None = None
    runner: str | None = None
    runner_until: datetime | None = None

    @property
    def target(self) -> Audience:
        return Audience(self.audience, self.product_id, self.days)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a broadcast's messages stand, from the outbox rows it wrote."""

    sent: int = 0
    failed: int = 0
    blocked: int = 0
    cancelled: int = 0
    left: int = 0  # not sent yet (pending, or in a sender's hands)

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.blocked + self.cancelled + self.left


def audience_condition(a: Audience, channel: str, now: datetime) -> ColumnElement[bool]:
    u, o = t.users, t.orders
    paid = [o.c.user_id == u.c.id, o.c.paid_at.is_not(None)]
    if a.kind == "product":
        paid.append(o.c.product_id == a.product_id)
    elif a.kind == "active":
        paid.append(o.c.paid_at >= now - timedelta(days=a.days or 0))
    elif a.kind != "all":
        raise ValueError(f"unknown audience {a.kind!r}")
    return and_(
        u.c.channel == channel,
        u.c.blocklisted.is_(False),
        exists(select(o.c.id).where(*paid)),
    )


@dataclass(frozen=True, slots=True)
class Chunk:
    """Recipients written by one ``enqueue_chunk``, and the last user id among them (None: the audience
    has no more)."""

    written: int
    upto: int | None


class BroadcastRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def count(self, a: Audience, channel: str, now: datetime) -> int:
        q = select(func.count()).select_from(t.users).where(audience_condition(a, channel, now))
        return int(self.conn.execute(q).scalar_one())

    def add(self, channel: str, a: Audience, text: str, created_by: str, now: datetime) -> int:
        values = {
            "channel": channel,
            "audience": a.kind,
            "product_id": a.product_id,
            "days": a.days,
            "text": text,
            "status": "draft",
            "created_by": created_by,
            "created_at": now,
        }
        return int(
            self.conn.execute(insert(t.broadcasts).values(**values).returning(t.broadcasts.c.id)).scalar_one()
        )

    def get(self, broadcast_id: int, *, lock: bool = False) -> BroadcastRow | None:
        q = select(t.broadcasts).where(t.broadcasts.c.id == broadcast_id)
        r = self.conn.execute(q.with_for_update() if lock else q).first()
        return to_dataclass(BroadcastRow, r) if r else None

    def unfinished(self) -> list[BroadcastRow]:
        """Broadcasts under way (or cancelled with messages still out), oldest first: a handful."""
        b = t.broadcasts
        q = (
            select(b)
            .where(b.c.status.in_(("enqueuing", "sending", "cancelled")), b.c.finished_at.is_(None))
            .order_by(b.c.id)
        )
        return [to_dataclass(BroadcastRow, r) for r in self.conn.execute(q).all()]

    def sending_ids(self) -> list[int]:
        """Broadcasts whose messages a sender may claim, oldest first: those under way, and those cancelled
        that still have messages to withdraw."""
        b = t.broadcasts
        q = (
            select(b.c.id)
            .where(b.c.status.in_(("enqueuing", "sending", "cancelled")), b.c.finished_at.is_(None))
            .order_by(b.c.id)
            .limit(20)
        )
        return [int(i) for i in self.conn.execute(q).scalars()]

    def set(self, broadcast_id: int, **values: Any) -> None:
        """Change a broadcast the caller holds locked (``get(lock=True)``)."""
        b = t.broadcasts
        self.conn.execute(update(b).where(b.c.id == broadcast_id).values(**values))

    def set_if_runner(self, broadcast_id: int, holder: str, **values: Any) -> None:
        """Change a broadcast only while ``holder`` leads it."""
        b = t.broadcasts
        self.conn.execute(update(b).where(b.c.id == broadcast_id, b.c.runner == holder).values(**values))

    def enqueue_chunk(self, row: BroadcastRow, size: int, now: datetime) -> Chunk:
        """Write the outbox messages of the next ``size`` recipients after user ``row.enqueued_upto``;
        returns how many were written and the last user id written (None: the audience is exhausted).

        Recipients who blocked the bot are written as already failed (never tried: they blocked it)."""
        u, o = t.users, t.outbox
        cond = and_(audience_condition(row.target, row.channel, now), u.c.id > row.enqueued_upto)
        upper = self.conn.execute(
            select(u.c.id).where(cond).order_by(u.c.id).offset(size - 1).limit(1)
        ).scalar_one_or_none()
        chunk = and_(cond, u.c.id <= upper) if upper is not None else and_(cond, true())
        blocked = u.c.bot_blocked.is_(True)
        pick = select(
            u.c.id,
            literal(BroadcastMessage.KIND),
            literal(BroadcastMessage(row.id).fields(), JSON),
            case((blocked, literal("failed")), else_=literal("pending")),
            literal(0),
            literal(now, t.UTCDateTime()),
            case((blocked, literal(BLOCKED_EARLIER)), else_=None),
            literal(now, t.UTCDateTime()),
            literal(row.id),
        ).where(chunk)
        columns = [
            "user_id",
            "kind",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "broadcast_id",
        ]
        written = self.conn.execute(insert(o).from_select(columns, pick)).rowcount
        return Chunk(int(written), upper)

    def delivery(self, broadcast_id: int) -> Delivery:
        o = t.outbox
        is_blocked = o.c.last_error.like("403%")
        q = (
            select(o.c.status, is_blocked, func.count())
            .where(o.c.broadcast_id == broadcast_id)
            .group_by(o.c.status, is_blocked)
        )
        counts = {"sent": 0, "failed": 0, "blocked": 0, "cancelled": 0, "left": 0}
        for status, blocked, n in self.conn.execute(q).all():
            if status == "pending":
                counts["left"] += n
            elif status == "failed":
                counts["blocked" if blocked else "failed"] += n
            elif status in counts:
                counts[status] += n
        return Delivery(**counts)

    def cancel_pending(self, broadcast_id: int, now: datetime) -> int:
        """Cancel a broadcast's messages waiting for a sender. Those a sender holds (leased: their next
        attempt is in the future) are left to it: it withdraws them, or has sent them already."""
        o = t.outbox
        q = (
            update(o)
            .where(o.c.broadcast_id == broadcast_id, o.c.status == "pending", o.c.next_attempt_at <= now)
            .values(status="cancelled", last_error="broadcast cancelled")
        )
        return int(self.conn.execute(q).rowcount)
