"""Exactly-once handling of WeChat's pushes across instances: WeChat retries a push it got no answer to
within 5 s (up to three times, possibly to another instance behind the same URL). The first to take its
key answers it; every retry is answered "success" and changes nothing.

A push is taken in its own transaction *before* it is handled: the handling is several transactions (the
user's row, a referral code, …) that cannot share one with the key. A crash between the two loses that
one reply (the buyer writes again), never doubles a change."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from core.context import Context
from core.uow import UnitOfWork

MAX_KEY = 128  # wechat_inbound.dedupe_key


def message_key(msg_id: int | str) -> str:
    """The key of a user message: WeChat's MsgId, unique per account."""
    return _bounded(f"m:{msg_id}")


def event_key(sender: str, create_time: int | str, event: str) -> str:
    """The key of an event, which has no MsgId: who, when (seconds) and which event."""
    return _bounded(f"e:{sender}:{create_time}:{event}")


def _bounded(key: str) -> str:
    # a key that would not fit the column is hashed, not cut: two long keys sharing a prefix stay apart
    return key if len(key) <= MAX_KEY else "h:" + hashlib.sha256(key.encode()).hexdigest()


class WechatInboundService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def take(self, dedupe_key: str) -> bool:
        """True for the first delivery of this push anywhere, False for a retry of one already taken."""
        return await self.ctx.write(_take, dedupe_key, self.ctx.clock.now())

    async def forget(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Forget pushes received longer ago than WeChat could retry them; how many were forgotten."""
        return await self.ctx.write(_forget, self.ctx.clock.now() - older_than)


def _take(uow: UnitOfWork, dedupe_key: str, now: datetime) -> bool:
    taken = uow.repo.wechat_inbound.take(dedupe_key, now)
    uow.commit()
    return taken


def _forget(uow: UnitOfWork, before: datetime) -> int:
    n = uow.repo.wechat_inbound.forget_before(before)
    uow.commit()
    return n
