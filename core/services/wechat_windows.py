"""WeChat users' customer-service windows (``core.windows``), and the messages parked while one is closed.

The WeChat channel calls ``contact`` on every push from a user that opens a window (a message, a menu tap,
a follow, a scan); a WeChat Pay payment opens one in the transaction that records it (the reactions in
``core.windows``). Each opening releases the user's parked messages. The sender reads the windows of a
round's users (``windows``), counts what it sent (``count_sent``) and parks a message WeChat refused, or
that it knows WeChat would refuse (``park``).

Parking is guarded against the race it has with an opening: a message refused just before the user wrote
must not wait for the user's next message. ``park`` closes the window only if no opening came after the
message was tried, in one transaction with the park; otherwise the message is due again at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.context import Context
from core.uow import UnitOfWork
from core.windows import CHANNEL, Spent, WechatWindow


class WechatWindowService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def windows(self, user_ids: Sequence[int]) -> dict[int, WechatWindow]:
        """What the shop knows of these users' windows (none for a user it never saw open one)."""
        return await self.ctx.read(_windows, user_ids)

    async def contact(self, openid: str, kind: str) -> int:
        """The WeChat user ``openid`` opened their window (``kind``: ``message`` or ``event``) now: record
        it and release their parked messages; returns how many were released (0 for an unknown openid)."""
        return await self.ctx.write(_contact, openid, kind, self.ctx.clock.now())

    async def opened(self, user_id: int, kind: str) -> int:
        """``contact`` by user id."""
        return await self.ctx.write(_opened, user_id, kind, self.ctx.clock.now())

    async def park(
        self, message_id: int, user_id: int, *, tried_at: datetime, why: str, progress: int
    ) -> bool:
        """Set a message aside until ``user_id`` next opens their window (``why``: WeChat's refusal, or
        the window known to be closed), its first ``progress`` steps done. False when the user opened the
        window after ``tried_at``: the message is then due again at once, not parked."""
        return await self.ctx.write(_park, message_id, user_id, tried_at, why, progress, self.ctx.clock.now())

    async def count_sent(self, spent: Sequence[tuple[int, Spent, int]]) -> None:
        """``(user_id, opening, n)``: n messages went out within that opening (one transaction a round)."""
        if spent:
            await self.ctx.write(_count_sent, spent)


def _windows(uow: UnitOfWork, user_ids: Sequence[int]) -> dict[int, WechatWindow]:
    return uow.repo.wechat_windows.many(user_ids)


def _contact(uow: UnitOfWork, openid: str, kind: str, now: datetime) -> int:
    user = uow.repo.users.get_by_external(CHANNEL, openid)
    if user is None:  # never seen: nothing of theirs can be parked
        return 0
    return _opened(uow, user.id, kind, now)


def _opened(uow: UnitOfWork, user_id: int, kind: str, now: datetime) -> int:
    uow.repo.wechat_windows.open(user_id, kind, now)
    released = uow.repo.outbox.release_parked(user_id, now)
    uow.commit()
    return released


def _park(
    uow: UnitOfWork, message_id: int, user_id: int, tried_at: datetime, why: str, progress: int, now: datetime
) -> bool:
    r = uow.repo
    if r.wechat_windows.close(user_id, now, unless_opened_after=tried_at):
        r.outbox.park(message_id, why, progress)
        parked = True
    else:
        r.outbox.postpone(message_id, now, f"window reopened: {why}", progress)
        parked = False
    uow.commit()
    return parked


def _count_sent(uow: UnitOfWork, spent: Sequence[tuple[int, Spent, int]]) -> None:
    for user_id, opening, n in spent:
        uow.repo.wechat_windows.count_sent(user_id, opening.kind, opening.opened_at, n)
    uow.commit()
