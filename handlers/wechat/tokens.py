"""The official account's access_token as one process sees it: the token every instance shares through the
database (``core.services.wechat_tokens``), kept in memory while it is fresh, renewed by one instance at a
time about 5 minutes before it expires.

``token(fetch)`` returns a token to call the API with; ``fetch`` is the client's call of ``stable_token`` in
normal mode, made only by the instance that holds the renewal lease. Within one process a single coroutine
goes to the database at a time (the others wait for what it found). While another instance renews, the old
token is used as long as WeChat still takes it; with none usable, this one waits for the new token, polling
the database, and takes over the renewal if the other's lease runs out. ``rejected(token)`` forgets a token
WeChat refused (40001/42001) everywhere, unless a newer one is already stored: the next ``token`` fetches
again in normal mode (never ``force_refresh``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from core.repositories.wechat_tokens import StoredToken
from core.services.wechat_tokens import LEASE, WechatTokenService
from handlers.wechat.errors import WechatApiError

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, int]]]  # (access_token, expires_in seconds)

NO_TOKEN = -1  # the errcode of a WechatApiError raised here (WeChat's own -1 is "system busy")
POLL_FIRST, POLL_MAX = 0.02, 0.5  # seconds between looks at the database while another instance renews


class TokenStore:
    def __init__(
        self, service: WechatTokenService, app_id: str, *, wait: float = LEASE.total_seconds() + 5
    ) -> None:
        """``wait``: the longest a caller waits for a token another instance is fetching (a little more
        than the lease, after which this instance may fetch it itself)."""
        self.service, self.app_id, self.wait = service, app_id, wait
        self.holder = secrets.token_hex(8)  # this instance, in the lease column
        self._cached: StoredToken | None = None
        self._lock = asyncio.Lock()

    async def token(self, fetch: Fetch) -> str:
        """A token WeChat takes (as far as anyone here knows)."""
        cached = self._cached
        if cached is not None and cached.token is not None and cached.fresh(self.service.now()):
            return cached.token
        async with self._lock:  # one coroutine of this process at the database; the others reuse its find
            return await self._shared(fetch)

    async def rejected(self, token: str) -> None:
        """WeChat refused ``token`` (invalid or expired): forget it here and in the database."""
        if self._cached is not None and self._cached.token == token:
            self._cached = None
        if await self.service.invalidate(self.app_id, token):
            log.info("wechat access_token rejected by WeChat: dropped, the next call fetches a new one")

    async def _shared(self, fetch: Fetch) -> str:
        deadline = time.monotonic() + self.wait
        pause = POLL_FIRST
        while True:
            now = self.service.now()
            cached = self._cached
            if cached is not None and cached.token is not None and cached.fresh(now):
                return cached.token  # found by the coroutine this one waited for
            stored = await self.service.current(self.app_id)
            if stored is not None and stored.token is not None and stored.fresh(now):
                self._cached = stored
                return stored.token
            if await self.service.claim(self.app_id, self.holder):
                return await self._renew(fetch, stored)
            if stored is not None and stored.token is not None and stored.usable(now):
                return stored.token  # another instance is renewing it: the old one still works
            if time.monotonic() >= deadline:
                raise WechatApiError(
                    NO_TOKEN, "no access_token: another instance is fetching it and none came"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX)

    async def _renew(self, fetch: Fetch, old: StoredToken | None) -> str:
        try:
            value, expires_in = await fetch()
        except Exception as e:
            await self.service.release(self.app_id, self.holder)
            still = old.token if old is not None and old.usable(self.service.now()) else None
            if still is None:
                raise
            log.warning("wechat access_token renewal failed (%s): the current one is used meanwhile", e)
            return still
        except BaseException:  # cancelled: the next caller may try at once
            await self.service.release(self.app_id, self.holder)
            raise
        stored = await self.service.store(self.app_id, self.holder, value, expires_in)
        self._cached = stored
        log.info("wechat access_token fetched, valid %d s", expires_in)
        assert stored.token is not None
        return stored.token
