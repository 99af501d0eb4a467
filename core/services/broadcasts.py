"""Broadcasts: an admin's message to an audience of buyers, delivered through the outbox.

A broadcast is a **draft** (audience and text, previewed by the admin) until confirmed; then it is
**enqueuing**: its outbox messages are written ``chunk`` recipients at a time, each chunk one short
transaction (INSERT ... SELECT by keyset over users: the audience is never held in memory, and checkouts
get the database between chunks). Once every recipient has a message it is **sending**, and **done** when
none is left. **Cancelled** stops it at any point: messages not yet in a sender's hands are cancelled at
once, the few a sender holds are withdrawn when it comes to them (``text_to_send`` refuses them).

Its counts are its outbox rows' statuses (``Delivery``): sent, failed, blocked (the recipient blocked the
bot: never retried, and those already known to have blocked it are never tried), cancelled, left. They are
kept on the broadcast when it ends. Starting, cancelling and finishing are audited.

Several bot processes may share one database: one at a time **leads** a broadcast under way (``hold``: it
writes the recipients and edits the progress message, for ``LEASE``), so the progress message is never
edited by two at once nor set back to older figures; another takes the lead when the first lets go (it
stopped) or its lease runs out (it crashed). Writing a chunk is safe without the lead anyway (the broadcast
row is locked, ``enqueued_upto`` read under the lock), and so is sending (the outbox claim)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.context import Context, UnitOfWork
from core.errors import (
    BroadcastNotDraft,
    BroadcastNotFound,
    BroadcastWithdrawn,
    InvalidInput,
    ProductNotFound,
)
from core.repositories.broadcasts import Audience, BroadcastRow, Delivery

CHUNK = 2_000  # recipients written per transaction
MAX_DAYS = 365  # "active in the last N days": 1..MAX_DAYS
MAX_TEXT = 16_384  # characters of HTML source; Telegram's own limit (4,096 once parsed) is checked by sending
AUDIENCES = ("all", "product", "active")
LEASE = timedelta(seconds=30)  # how long a process leads a broadcast without renewing (``hold``)


@dataclass(frozen=True, slots=True)
class Progress:
    broadcast: BroadcastRow
    delivery: Delivery

    @property
    def finished(self) -> bool:
        return self.broadcast.finished_at is not None

    @property
    def left(self) -> int:
        """Messages not sent yet; while recipients are still being written, those to come are counted
        from the audience's size when the broadcast started."""
        d = self.delivery
        if self.broadcast.status == "enqueuing":
            return max(d.left, self.broadcast.recipients - (d.total - d.left))
        return d.left


class BroadcastService:
    def __init__(
        self,
        ctx: Context,
        *,
        chunk: int = CHUNK,
        poll: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.chunk = chunk
        self.poll, self._clock = poll, clock
        self._live: dict[int, tuple[str | None, float]] = {}  # broadcast -> its text (None: stopped)

    async def count(self, channel: str, audience: Audience) -> int:
        """How many users of ``channel`` the audience holds now."""
        _check(audience)
        return await self.ctx.read(_count, channel, audience, self.ctx.clock.now())

    async def save_draft(
        self, channel: str, audience: Audience, text: str, *, actor: str, draft_id: int | None = None
    ) -> tuple[int, int]:
        """Write a draft (or replace the text of draft ``draft_id``); returns its id and how many
        recipients its audience holds now."""
        _check(audience)
        if not text.strip() or len(text) > MAX_TEXT:
            raise InvalidInput("a broadcast's text is 1 to 16,384 characters of HTML")
        return await self.ctx.write(
            _save_draft, channel, audience, text, actor, draft_id, self.ctx.clock.now()
        )

    async def get(self, broadcast_id: int) -> BroadcastRow:
        row = await self.ctx.read(_get, broadcast_id)
        if row is None:
            raise BroadcastNotFound(broadcast_id=broadcast_id)
        return row

    async def start(
        self,
        broadcast_id: int,
        *,
        actor: str,
        progress_chat: str | None = None,
        progress_message_id: int | None = None,
        language: str | None = None,
        runner: str | None = None,
    ) -> BroadcastRow:
        """Confirm a draft: it starts enqueuing (``enqueue_next``), led by ``runner`` (the process that
        confirmed it, see ``hold``). A second confirmation is refused (``BroadcastNotDraft``), so a double
        tap sends nothing twice. Audited with its audience and count."""
        progress = (progress_chat, progress_message_id, language)
        return await self.ctx.write(_start, broadcast_id, actor, progress, runner, self.ctx.clock.now())

    async def discard(self, broadcast_id: int, *, actor: str) -> None:
        """Drop a draft (never sent)."""
        await self.ctx.write(_discard, broadcast_id, actor, self.ctx.clock.now())

    async def enqueue_next(self, broadcast_id: int) -> bool:
        """Write the next chunk of recipients' messages; True while more are to come."""
        return await self.ctx.write(_enqueue, broadcast_id, self.chunk, self.ctx.clock.now())

    async def enqueue_all(self, broadcast_id: int) -> None:
        while await self.enqueue_next(broadcast_id):
            pass

    async def cancel(self, broadcast_id: int, *, actor: str) -> bool:
        """Stop a broadcast: nothing not yet sent goes out. True when this call stopped it; calling again
        (or on one already done) changes nothing."""
        stopped = await self.ctx.write(_cancel, broadcast_id, actor, self.ctx.clock.now())
        self._live[broadcast_id] = (None, self._clock())
        return stopped

    async def progress(self, broadcast_id: int) -> Progress:
        """Where a broadcast stands. One with nothing left to send is finished here: its counts are kept
        and the end is audited."""
        row, delivery = await self.ctx.read(_progress, broadcast_id)
        if row is None:
            raise BroadcastNotFound(broadcast_id=broadcast_id)
        if row.finished_at is None and row.status in ("sending", "cancelled") and delivery.left == 0:
            return Progress(*await self.ctx.write(_finish, broadcast_id, self.ctx.clock.now()))
        return Progress(row, delivery)

    async def hold(self, broadcast_id: int, *, runner: str) -> bool | None:
        """Take or keep the lead on a broadcast under way for ``LEASE``: True when ``runner`` leads it now,
        False while another process does (until it lets go or its lease runs out), None when there is
        nothing left to lead (finished, or unknown)."""
        return await self.ctx.write(_hold, broadcast_id, runner, self.ctx.clock.now())

    async def shown(self, broadcast_id: int, digest: str, *, runner: str) -> None:
        """Record what the progress message says now (a digest), as its leader edited it; whoever leads
        next edits it only when its figures differ (Telegram refuses an edit that changes nothing)."""
        await self.ctx.write(_shown, broadcast_id, digest, runner)

    async def let_go(self, broadcast_id: int, *, runner: str) -> None:
        """Give up the lead (a process stopping): another may take it at once."""
        await self.ctx.write(_let_go, broadcast_id, runner)

    async def unfinished(self) -> list[BroadcastRow]:
        return await self.ctx.read(_unfinished)

    async def text_to_send(self, broadcast_id: int) -> str:
        """The text of a broadcast under way, for a sender about to send one of its messages (read at most
        every ``poll`` seconds); ``BroadcastWithdrawn`` once it was cancelled."""
        now = self._clock()
        hit = self._live.get(broadcast_id)
        if hit is None or (hit[0] is not None and now - hit[1] >= self.poll):
            row = await self.ctx.read(_get, broadcast_id)
            live = row is not None and row.status in ("enqueuing", "sending")
            if len(self._live) > 64:
                self._live.clear()
            hit = self._live[broadcast_id] = (row.text if live and row else None, now)
        if hit[0] is None:
            raise BroadcastWithdrawn(broadcast_id=broadcast_id)
        return hit[0]


def _check(a: Audience) -> None:
    if a.kind not in AUDIENCES:
        raise InvalidInput(f"an audience is one of {AUDIENCES}")
    if a.kind == "product" and (a.product_id is None or a.product_id < 1):
        raise InvalidInput("a product audience names a product")
    if a.kind == "active" and (a.days is None or not 1 <= a.days <= MAX_DAYS):
        raise InvalidInput(f"active buyers are counted over 1 to {MAX_DAYS} days")


def _count(uow: UnitOfWork, channel: str, a: Audience, now: datetime) -> int:
    if a.kind == "product" and a.product_id is not None and uow.repo.catalog.product(a.product_id) is None:
        raise ProductNotFound(product_id=a.product_id)
    return uow.repo.broadcasts.count(a, channel, now)


def _get(uow: UnitOfWork, broadcast_id: int) -> BroadcastRow | None:
    return uow.repo.broadcasts.get(broadcast_id)


def _save_draft(
    uow: UnitOfWork,
    channel: str,
    a: Audience,
    text: str,
    actor: str,
    draft_id: int | None,
    now: datetime,
) -> tuple[int, int]:
    r = uow.repo.broadcasts
    count = _count(uow, channel, a, now)
    if draft_id is None:
        draft_id = r.add(channel, a, text, actor, now)
    else:
        row = r.get(draft_id, lock=True)
        if row is None:
            raise BroadcastNotFound(broadcast_id=draft_id)
        if row.status != "draft":
            raise BroadcastNotDraft(broadcast_id=draft_id, state=row.status)
        r.set(draft_id, text=text, audience=a.kind, product_id=a.product_id, days=a.days)
    uow.commit()
    return draft_id, count


def _draft(uow: UnitOfWork, broadcast_id: int) -> BroadcastRow:
    row = uow.repo.broadcasts.get(broadcast_id, lock=True)
    if row is None:
        raise BroadcastNotFound(broadcast_id=broadcast_id)
    if row.status != "draft":
        raise BroadcastNotDraft(broadcast_id=broadcast_id, state=row.status)
    return row


def _start(
    uow: UnitOfWork,
    broadcast_id: int,
    actor: str,
    progress: tuple[str | None, int | None, str | None],
    runner: str | None,
    now: datetime,
) -> BroadcastRow:
    r = uow.repo.broadcasts
    row = _draft(uow, broadcast_id)
    count = r.count(row.target, row.channel, now)
    chat, message_id, language = progress
    r.set(
        broadcast_id,
        status="enqueuing",
        recipients=count,  # for now the audience's size; once written, the messages written
        started_at=now,
        progress_chat=chat,
        progress_message_id=message_id,
        progress_language=language,
        runner=runner,
        runner_until=now + LEASE if runner else None,
    )
    uow.repo.audit.add(
        now,
        actor,
        "broadcast_started",
        product_id=row.product_id,
        broadcast=broadcast_id,
        audience=row.audience,
        days=row.days,
        recipients=count,
        chars=len(row.text),
    )
    started = r.get(broadcast_id)
    assert started is not None
    uow.commit()
    return started


def _discard(uow: UnitOfWork, broadcast_id: int, actor: str, now: datetime) -> None:
    _draft(uow, broadcast_id)
    uow.repo.broadcasts.set(broadcast_id, status="cancelled", finished_at=now)
    uow.commit()


def _enqueue(uow: UnitOfWork, broadcast_id: int, size: int, now: datetime) -> bool:
    r = uow.repo.broadcasts
    row = r.get(broadcast_id, lock=True)  # a cancel waits for this chunk, or this chunk sees the cancel
    if row is None or row.status != "enqueuing":
        return False
    upper = r.enqueue_chunk(row, size, row.started_at or now).upto
    if upper is None:
        r.set(broadcast_id, recipients=r.delivery(broadcast_id).total, status="sending")
    else:
        r.set(broadcast_id, enqueued_upto=upper)
    uow.commit()
    return upper is not None


def _cancel(uow: UnitOfWork, broadcast_id: int, actor: str, now: datetime) -> bool:
    r = uow.repo.broadcasts
    row = r.get(broadcast_id, lock=True)
    if row is None:
        raise BroadcastNotFound(broadcast_id=broadcast_id)
    if row.status not in ("enqueuing", "sending"):
        return False
    r.set(broadcast_id, status="cancelled")
    withdrawn = r.cancel_pending(broadcast_id, now)
    uow.repo.audit.add(now, actor, "broadcast_cancelled", broadcast=broadcast_id, withdrawn=withdrawn)
    uow.commit()
    return True


def _progress(uow: UnitOfWork, broadcast_id: int) -> tuple[BroadcastRow | None, Delivery]:
    r = uow.repo.broadcasts
    row = r.get(broadcast_id)
    if row is None:
        return None, Delivery()
    if row.finished_at is not None:  # its counts were kept when it ended
        return row, Delivery(row.sent, row.failed, row.blocked, row.cancelled, 0)
    return row, r.delivery(broadcast_id)


def _finish(uow: UnitOfWork, broadcast_id: int, now: datetime) -> tuple[BroadcastRow, Delivery]:
    r = uow.repo.broadcasts
    row = r.get(broadcast_id, lock=True)
    assert row is not None
    d = r.delivery(broadcast_id)
    if row.finished_at is None and row.status in ("sending", "cancelled") and d.left == 0:
        status = "done" if row.status == "sending" else "cancelled"
        counts = {"sent": d.sent, "failed": d.failed, "blocked": d.blocked, "cancelled": d.cancelled}
        r.set(broadcast_id, status=status, finished_at=now, recipients=d.total, **counts)
        uow.repo.audit.add(
            now, "system", "broadcast_finished", broadcast=broadcast_id, status=status, **counts
        )
        row = r.get(broadcast_id)
        assert row is not None
    uow.commit()
    return row, d


def _unfinished(uow: UnitOfWork) -> list[BroadcastRow]:
    return uow.repo.broadcasts.unfinished()


def _hold(uow: UnitOfWork, broadcast_id: int, runner: str, now: datetime) -> bool | None:
    r = uow.repo.broadcasts
    row = r.get(broadcast_id, lock=True)
    if row is None or row.finished_at is not None or row.status not in ("enqueuing", "sending", "cancelled"):
        return None
    if row.runner not in (None, runner) and row.runner_until is not None and row.runner_until > now:
        return False
    r.set(broadcast_id, runner=runner, runner_until=now + LEASE)
    uow.commit()
    return True


def _shown(uow: UnitOfWork, broadcast_id: int, digest: str, runner: str) -> None:
    uow.repo.broadcasts.set_if_runner(broadcast_id, runner, progress_shown=digest)
    uow.commit()


def _let_go(uow: UnitOfWork, broadcast_id: int, runner: str) -> None:
    uow.repo.broadcasts.set_if_runner(broadcast_id, runner, runner=None, runner_until=None)
    uow.commit()
