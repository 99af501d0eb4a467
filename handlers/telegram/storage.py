"""Conversation (FSM) state that outlives a Redis outage: kept in Redis while it answers, in this process's
memory while it does not, so that buyers are still served.

When Redis stops answering, the dependency logs it once and state goes to memory; Redis is asked again
after a backoff (capped exponential, so a dead Redis costs an update nothing but a lookup in memory), and
once it answers, state is read from and written to it again (the dependency logs that once too). A
conversation that moved on during the outage finds Redis's older state afterwards: at worst a form starts
over, never a wrong purchase (every step is checked by the services again).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage

from core.resilience import Backoff, Dependency
from handlers.telegram.health import is_redis_outage

_T = TypeVar("_T")


class FallbackStorage(BaseStorage):
    """``primary`` (a RedisStorage) while it answers; an in-memory storage while it does not."""

    def __init__(
        self,
        primary: BaseStorage,
        dependency: Dependency,
        *,
        backoff: Backoff | None = None,
        is_outage: Callable[[BaseException], bool] = is_redis_outage,
    ) -> None:
        self.primary, self.dependency = primary, dependency
        self.memory = MemoryStorage()
        self.backoff = backoff or Backoff(first=1.0, cap=30.0)
        self._is_outage = is_outage
        self._retry_at = 0.0
        self._attempt = 0

    async def _use(self, call: Callable[[BaseStorage], Awaitable[_T]]) -> _T:
        if self.dependency.up is False and time.monotonic() < self._retry_at:
            return await call(self.memory)
        try:
            result = await call(self.primary)
        except Exception as e:
            if not self._is_outage(e):
                raise
            self._went_away(e)
            return await call(self.memory)
        self._answered()
        return result

    def _went_away(self, error: BaseException) -> None:
        self.dependency.failed(error)
        self._retry_at = time.monotonic() + self.backoff.delay(self._attempt)
        self._attempt += 1

    def _answered(self) -> None:
        self.dependency.ok()
        self._attempt = 0

    async def ping(self) -> None:
        """Raises unless the primary storage's Redis answers PING (for health checks)."""
        redis = getattr(self.primary, "redis", None)
        if redis is None:
            return
        try:
            await redis.ping()
        except Exception as e:
            if self._is_outage(e):
                self._went_away(e)
            raise
        self._answered()

    async def set_state(self, key: StorageKey, state: str | State | None = None) -> None:
        await self._use(lambda s: s.set_state(key, state))

    async def get_state(self, key: StorageKey) -> str | None:
        return await self._use(lambda s: s.get_state(key))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._use(lambda s: s.set_data(key, data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await self._use(lambda s: s.get_data(key))

    async def close(self) -> None:
        await self.primary.close()
        await self.memory.close()
