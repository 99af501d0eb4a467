"""The official account's access_token, shared by every instance through the database (one row per AppID).

WeChat keeps one stable token per account (``POST /cgi-bin/stable_token``, normal mode: the same token to
every caller, renewed in its last 5 minutes). Each instance reads it from here; when it is missing, due
(within ``EARLY`` of expiring) or rejected, one instance at a time takes a lease (``LEASE``: a crashed
holder blocks no one for longer), fetches it and stores it; the others meanwhile keep using the old one
while it is valid, or wait for the new one. The fetching itself is the channel's
(``handlers/wechat/tokens.py``); each method here is one short transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.context import Context
from core.repositories.wechat_tokens import StoredToken
from core.uow import UnitOfWork

EARLY = timedelta(minutes=5)  # renew this long before expiry (WeChat renews its stable token then too)
LEASE = timedelta(seconds=30)  # how long a renewal may take before another instance may try
# When WeChat answers a renewal with a token that is itself due (it had no newer one yet), the next try
# waits this long (or half the token's life, if shorter) instead of asking again on every call.
RETRY_DUE = timedelta(seconds=60)


class WechatTokenService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def now(self) -> datetime:
        return self.ctx.clock.now()

    async def current(self, app_id: str) -> StoredToken | None:
        return await self.ctx.read(_current, app_id)

    async def claim(self, app_id: str, holder: str, lease: timedelta = LEASE) -> bool:
        """Take the renewal of the token for ``lease``: True when ``holder`` may fetch it now (it is
        missing, due or expired, and no other instance's lease is running)."""
        now = self.now()
        return await self.ctx.write(_claim, app_id, holder, now, now + lease)

    async def store(self, app_id: str, holder: str, token: str, expires_in: int) -> StoredToken:
        """``token``, valid ``expires_in`` seconds from now, as the shared one; ``holder``'s lease ends."""
        now = self.now()
        expires_at = now + timedelta(seconds=max(0, expires_in))
        refresh_at = max(expires_at - EARLY, now + min(RETRY_DUE, (expires_at - now) / 2))
        return await self.ctx.write(_store, app_id, holder, token, expires_at, refresh_at, now)

    async def release(self, app_id: str, holder: str) -> None:
        """``holder`` could not fetch a token: let the next instance try at once."""
        await self.ctx.write(_release, app_id, holder, self.now())

    async def invalidate(self, app_id: str, token: str) -> bool:
        """WeChat rejected ``token``: drop it unless another instance already stored a newer one."""
        return await self.ctx.write(_invalidate, app_id, token, self.now())


def _current(uow: UnitOfWork, app_id: str) -> StoredToken | None:
    return uow.repo.wechat_tokens.get(app_id)


def _claim(uow: UnitOfWork, app_id: str, holder: str, now: datetime, until: datetime) -> bool:
    uow.repo.wechat_tokens.ensure(app_id, now)
    taken = uow.repo.wechat_tokens.take_lease(app_id, holder, now, until)
    uow.commit()
    return taken


def _store(
    uow: UnitOfWork,
    app_id: str,
    holder: str,
    token: str,
    expires_at: datetime,
    refresh_at: datetime,
    now: datetime,
) -> StoredToken:
    repo = uow.repo.wechat_tokens
    repo.ensure(app_id, now)
    repo.put(app_id, token, expires_at, refresh_at, now)
    repo.release(app_id, holder, now)
    stored = repo.get(app_id)
    uow.commit()
    assert stored is not None
    return stored


def _release(uow: UnitOfWork, app_id: str, holder: str, now: datetime) -> None:
    uow.repo.wechat_tokens.release(app_id, holder, now)
    uow.commit()


def _invalidate(uow: UnitOfWork, app_id: str, token: str, now: datetime) -> bool:
    dropped = uow.repo.wechat_tokens.forget(app_id, token, now)
    uow.commit()
    return dropped
