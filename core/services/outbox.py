"""The outbox: messages that must reach a user, written in the same transaction as the state change they
report. A channel's sender claims due messages, sends them, and reports back here.

A message is ``pending`` (due at ``next_attempt_at``), then ``sent``, ``failed`` or ``cancelled``; or
``parked``: a channel that may only write within a window the user opens (WeChat's 48 hours) set it aside,
not due, no attempt counted, until the user opens one again (``core.services.wechat_windows``). A message
sent in several steps keeps how many are done (``progress``), so one taken up again goes on from there."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.context import Context, UnitOfWork
from core.messages import MESSAGE_TYPES, Message, UnknownMessage, decode
from core.reactions import write_message
from core.services.transient import retry_transient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
LEASE = timedelta(minutes=2)  # a claimed message is offered again after this, if its sender vanished


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    user_id: int
    channel: str
    external_id: str  # the chat to send to
    language: str | None
    message: Message
    attempts: int
    progress: int = 0  # steps already done, for a message sent in several (``retry``'s ``progress``)

    @property
    def kind(self) -> str:
        return self.message.KIND


class OutboxService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def claim(self, channel: str, limit: int = 50, bulk: int = 20) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages of ``channel`` to the caller: the shop's own first (keys,
        refunds, notices); only when fewer than ``limit`` of those are due, up to ``bulk`` messages of the
        oldest broadcast that has some due. A round stays short (``bulk`` sends take well under a second at
        Telegram's pace), so a delivery written while a broadcast runs goes out in the next round.

        Only the message types this process knows are claimed: a type written by a newer version waits for
        a process that can read it. A row of a known type whose fields cannot be read (damaged) can never
        be sent: it is marked failed, with why, in the same transaction, and the rest are claimed."""
        return await self.ctx.write(_claim, channel, limit, bulk, self.ctx.clock.now())

    async def tell(self, user_id: int, message: Message) -> None:
        """Queue ``message`` for ``user_id`` on its own, with no state change to report beside it: a
        channel's answer that came too late to be the reply itself (``ChatReply``)."""
        await self.ctx.write(_tell, user_id, message, self.ctx.clock.now())

    async def sent(self, message_id: int) -> None:
        await self._finish(message_id, "sent", None)

    async def sent_many(self, message_ids: list[int]) -> None:
        """Mark messages sent, in one transaction (a sender's whole round). A briefly locked or dropped
        database is retried: failing here would send the whole round again."""
        if message_ids:
            await retry_transient(
                lambda: self.ctx.write(_sent_many, message_ids, self.ctx.clock.now()),
                f"marking {len(message_ids)} outbox messages sent",
            )

    async def undeliverable(self, message_id: int, error: str) -> None:
        """Never to be sent (the user blocked the bot, the chat is gone): kept for the record."""
        await self._finish(message_id, "failed", error)

    async def withdrawn(self, message_id: int, why: str) -> None:
        """Not to be sent any more (its broadcast was cancelled): kept for the record."""
        await self._finish(message_id, "cancelled", why)

    async def retry(
        self, message_id: int, *, after: timedelta, error: str, progress: int | None = None
    ) -> bool:
        """Send again later. Returns False (and gives up) after MAX_ATTEMPTS. ``progress``: the steps of a
        message sent in several that are done, so the next attempt does not do them again."""
        return await self.ctx.write(_retry, message_id, self.ctx.clock.now(), after, error, progress)

    async def postpone(
        self, message_id: int, *, until: datetime, why: str, progress: int | None = None
    ) -> None:
        """Due again at ``until``, no attempt counted: nothing failed, the channel cannot send it yet (its
        daily quota is used up, a refund it has no way to make yet)."""
        await self.ctx.write(_postpone, message_id, until, why, progress)

    async def advance(self, message_id: int, progress: int) -> None:
        """Record that the first ``progress`` steps of a message are done, at once: a step that moved money
        (a refund) is never done again, whatever happens to the rest of the message."""
        await retry_transient(
            lambda: self.ctx.write(_advance, message_id, progress), f"recording outbox {message_id} progress"
        )

    async def purge_sent(self, older_than: timedelta, *, batch: int = 5000) -> int:
        """Delete messages sent more than ``older_than`` ago (OUTBOX_RETENTION_DAYS), a batch per short
        transaction so senders never wait long; returns how many. What was delivered stays in the orders,
        the keys and the audit log: an old outbox row only says that a message went out."""
        before = self.ctx.clock.now() - older_than
        total = 0
        while True:
            n = await self.ctx.write(_purge_sent, before, batch)
            total += n
            if n < batch:
                return total

    async def _finish(self, message_id: int, status: str, error: str | None) -> None:
        await self.ctx.write(_finish, message_id, status, error, self.ctx.clock.now())


def _claim(uow: UnitOfWork, channel: str, limit: int, bulk: int, now: datetime) -> list[OutboxMessage]:
    out = []
    outbox = uow.repo.outbox
    rows = outbox.claim(channel, MESSAGE_TYPES.keys(), now, now + LEASE, limit)
    if len(rows) < limit and bulk > 0:
        for broadcast_id in uow.repo.broadcasts.sending_ids():
            more = outbox.claim(
                channel, MESSAGE_TYPES.keys(), now, now + LEASE, bulk, broadcast_id=broadcast_id
            )
            if more:
                rows += more
                break
    for r in rows:
        try:
            message = decode(r.kind, json.loads(r.payload_json))
        except (UnknownMessage, ValueError, RecursionError) as e:
            log.error("outbox %s (%s) cannot be read, set aside: %s", r.id, r.kind, e)
            outbox.finish(r.id, "failed", now, f"unreadable: {e}")
            continue
        out.append(
            OutboxMessage(
                r.id, r.user_id, r.channel, r.external_id, r.language, message, r.attempts, r.progress
            )
        )
    uow.commit()
    return out


def _tell(uow: UnitOfWork, user_id: int, message: Message, now: datetime) -> None:
    write_message(uow, user_id, message, now)
    uow.commit()


def _sent_many(uow: UnitOfWork, message_ids: list[int], now: datetime) -> None:
    for message_id in message_ids:
        uow.repo.outbox.finish(message_id, "sent", now)
    uow.commit()


def _retry(
    uow: UnitOfWork, message_id: int, now: datetime, after: timedelta, error: str, progress: int | None
) -> bool:
    attempts = uow.repo.outbox.reschedule(message_id, now + after, error, progress)
    if attempts >= MAX_ATTEMPTS:
        uow.repo.outbox.finish(message_id, "failed", now, f"gave up: {error}")
    uow.commit()
    return attempts < MAX_ATTEMPTS


def _postpone(uow: UnitOfWork, message_id: int, until: datetime, why: str, progress: int | None) -> None:
    uow.repo.outbox.postpone(message_id, until, why, progress)
    uow.commit()


def _advance(uow: UnitOfWork, message_id: int, progress: int) -> None:
    uow.repo.outbox.set_progress(message_id, progress)
    uow.commit()


def _finish(uow: UnitOfWork, message_id: int, status: str, error: str | None, now: datetime) -> None:
    uow.repo.outbox.finish(message_id, status, now, error)
    uow.commit()


def _purge_sent(uow: UnitOfWork, before: datetime, limit: int) -> int:
    n = uow.repo.outbox.purge_sent(before, limit)
    uow.commit()
    return n
