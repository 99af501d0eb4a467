"""Each distributor's permanent QR code in the official account (scene ``ref:<code>``), made once.

WeChat allows 100,000 permanent codes per account, for ever: a code is asked for the first time a scene
needs one and its link is kept (``wechat_qr_codes``), shared by every instance. The instance that claims a
scene asks WeChat (``make``, the channel's call); another asking meanwhile waits a moment for it. A maker
that fails gives its claim back at once; one that dies leaves it to go stale after ``CLAIM_FOR``. Only a
maker dying between WeChat's answer and storing it can cost a second code for the same scene."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from core.context import Context
from core.repositories.wechat_qr_codes import QrCode
from core.uow import UnitOfWork

CLAIM_FOR = timedelta(seconds=30)
WAIT_FOR = 2.0  # seconds to wait for a code another instance is making, before answering without it
POLL = 0.1


class WechatQrService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def permanent_url(
        self, app_id: str, scene: str, make: Callable[[str], Awaitable[str]], wait: float = WAIT_FOR
    ) -> str | None:
        """The link of ``scene``'s permanent QR code: the one made before, or one made now by ``make(scene)``
        (whose exception, if any, propagates after the claim is given back). None when another instance
        is making it and it is not ready within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            found = await self.ctx.read(_get, app_id, scene)
            if found is not None and found.url is not None:
                return found.url
            now = self.ctx.clock.now()
            if await self.ctx.write(_claim, app_id, scene, now, now - CLAIM_FOR):
                try:
                    url = await make(scene)
                except BaseException:
                    await self.ctx.write(_unclaim, app_id, scene, now)
                    raise
                await self.ctx.write(_fill, app_id, scene, url, self.ctx.clock.now())
                return url
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(POLL)


def _get(uow: UnitOfWork, app_id: str, scene: str) -> QrCode | None:
    return uow.repo.wechat_qr_codes.get(app_id, scene)


def _claim(uow: UnitOfWork, app_id: str, scene: str, now: datetime, stale_before: datetime) -> bool:
    taken = uow.repo.wechat_qr_codes.claim(app_id, scene, now, stale_before)
    uow.commit()
    return taken


def _fill(uow: UnitOfWork, app_id: str, scene: str, url: str, now: datetime) -> None:
    uow.repo.wechat_qr_codes.fill(app_id, scene, url, now)
    uow.commit()


def _unclaim(uow: UnitOfWork, app_id: str, scene: str, claimed_at: datetime) -> None:
    uow.repo.wechat_qr_codes.unclaim(app_id, scene, claimed_at)
    uow.commit()
