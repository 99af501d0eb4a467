"""What several ``keyshop run`` processes serving one bot share through Redis (``REDIS_URL``).

Behind a load balancer, one buyer's updates land on any instance, and Telegram counts the bot's messages,
not a process's. So what one process keeps in memory when it runs alone is kept in Redis for all of them:

- the per-user throttle (``SharedThrottle``): a user who floods two instances is limited as one user;
- the user cache (``SharedUserCache``): a change of a user's language or phone forgets their cached row on
  every instance, not only on the one that made it;
- the send pace (``SharedSendPacer``): 30 messages a second for the bot, not 30 per instance, which two
  instances would double into 429s; and the 20 a minute per group (``SharedGroupPacer``).

Each is a small Lua script (or one plain command), atomic in Redis, whose clock is Redis's own ``TIME``:
instances on machines whose clocks disagree still share one timeline. FSM state is shared by aiogram's own
``RedisStorage`` (``bot.app.make_storage``).

Redis being briefly unreachable must not refuse buyers: every piece then falls back to what one process
does alone (its own buckets and pacers; the user cache reads the database instead), and ``RedisShared``
logs the change of state once each way and leaves Redis alone for ``retry_every`` seconds between tries,
so a dead Redis costs no timeout per update.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from core.models import User
from core.resilience import Dependency
from handlers.telegram.middlewares import MESSAGES, NEWCOMER, Kind, Newcomer, Rate, Throttle, UserCache
from handlers.telegram.pacing import GroupPacer, SendPacer

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# A Redis that takes longer than this to answer counts as unreachable (it answers in well under a
# millisecond when it is fine): an update waits at most this long for it once per ``retry_every``.
TIMEOUT = 1.0


class Unavailable(Exception):
    """Redis did not answer (or is left alone for a while after it did not): do what one process does."""


class RedisShared:
    """One process's link to the Redis its fellow instances share: the client, the keys (all under
    ``keyshop:<bot id>:``, so shops sharing one Redis keep apart), whether Redis answers, and the shared
    pieces made on it."""

    def __init__(
        self, redis: Redis, bot_id: int, *, retry_every: float = 2.0, dependency: Dependency | None = None
    ) -> None:
        self.redis, self.bot_id, self.retry_every = redis, bot_id, retry_every
        # Whether Redis answers, as the storefront tracks it (the FSM storage reports to the same one): an
        # outage is logged once when it starts and once when it ends, whoever meets it first.
        self.dependency = dependency or Dependency("Redis", logger=log)
        self.prefix = f"keyshop:{bot_id}"
        self._down = False
        self._retry_at = 0.0

    @classmethod
    def from_url(cls, url: str, bot_id: int, dependency: Dependency | None = None) -> RedisShared:
        # No retries in the client: a failed call falls back at once and ``run`` decides when to try again.
        redis = Redis.from_url(
            url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0)
        )
        return cls(redis, bot_id, dependency=dependency)

    def key(self, *parts: object) -> str:
        return ":".join((self.prefix, *(str(p) for p in parts)))

    async def run(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``'s result, or ``Unavailable`` when Redis fails (or failed less than ``retry_every``
        seconds ago). The first failure and the recovery are logged, once each."""
        if self._down and time.monotonic() < self._retry_at:
            raise Unavailable
        try:
            result = await call()
        except (RedisError, OSError) as e:
            self._retry_at = time.monotonic() + self.retry_every
            if not self._down:
                # Until it is back this instance throttles, caches users and paces its sends on its own.
                self._down = True
                self.dependency.failed(e)
            raise Unavailable from e
        if self._down or self.dependency.up is not True:
            self._down = False
            self.dependency.ok()
        return result

    async def attempt(self, call: Callable[[], Awaitable[object]]) -> None:
        """``call()`` if Redis answers; nothing otherwise (what is only an optimisation may fail)."""
        with contextlib.suppress(Unavailable):
            await self.run(call)

    def throttle(self, taps: Rate, messages: Rate) -> SharedThrottle:
        return SharedThrottle(self, taps, messages)

    def user_cache(self, ttl: float = 30.0) -> SharedUserCache:
        return SharedUserCache(self, ttl)

    def send_pacer(self, name: str, per_second: float) -> SharedSendPacer:
        return SharedSendPacer(self, name, per_second)

    def group_pacer(self, per_minute: int, *, gap: float, window: float = 61.0) -> SharedGroupPacer:
        return SharedGroupPacer(self, per_minute, gap=gap, window=window)

    async def close(self) -> None:
        await self.redis.aclose()


# ----------------------------------------------------------------------------------------------- throttle

# ``_Buckets.reserve`` of middlewares.py, on a hash per user and kind ({t: tokens, at: seconds}) that expires
# when the bucket would be full again (a missing bucket is a full one), plus the "told to slow down" mark.
# KEYS: the bucket, the mark. ARGV: per second, burst, max wait in seconds (negative: any), 1 for the
# notice's turn (only if not told yet; marks them told) else 0 (a grant clears the mark).
# Returns the wait in microseconds, or -1: refused (or told already).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local notice = ARGV[4] == '1'
if notice and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', 3600) then
  return -1
end
local b = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = math.max(0, (1 - tokens) / rate)
local granted = max_wait < 0 or wait <= max_wait
if granted then
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 't', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
if not granted then
  return -1
end
if not notice then
  redis.call('DEL', KEYS[2])
end
return math.ceil(wait * 1000000)
"""


class SharedThrottle(Throttle):
    """The throttle's buckets in Redis, for every instance; this process's own while Redis is away."""

    def __init__(self, link: RedisShared, taps: Rate, messages: Rate) -> None:
        super().__init__(taps, messages)
        self.link = link
        self._script = link.redis.register_script(_RESERVE)

    async def reserve(self, kind: Kind, user_id: int, max_wait: float) -> float | None:
        try:
            return await self._run(kind, user_id, max_wait, notice=False)
        except Unavailable:
            return await super().reserve(kind, user_id, max_wait)

    async def notice_turn(self, user_id: int) -> float | None:
        try:
            return await self._run(MESSAGES, user_id, -1.0, notice=True)
        except Unavailable:
            return await super().notice_turn(user_id)

    async def _run(self, kind: Kind, user_id: int, max_wait: float, *, notice: bool) -> float | None:
        rate = self.rates[kind]
        keys = [self.link.key("throttle", kind, user_id), self.link.key("throttle", "told", user_id)]
        args = [rate.per_second, rate.burst, max_wait, int(notice)]
        micros = int(await self.link.run(lambda: self._script(keys=keys, args=args)))
        return None if micros < 0 else micros / 1_000_000


# ------------------------------------------------------------------------------------------- user cache

_ABSENT = b"-"  # the newcomer mark: looked up, no row
# KEYS: the user's entry. ARGV: the row, its time to live in ms. The row replaces a newcomer mark only.
_NEWCOMER_STORED = """
if redis.call('GET', KEYS[1]) == '-' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 0
"""


class SharedUserCache(UserCache):
    """The user cache in Redis: an entry per user with a time to live, deleted by ``forget`` for every
    instance. While Redis is away nothing is cached (each update reads its user from the database), and a
    ``forget`` that could not reach it leaves an entry at most ``ttl`` seconds old, as a stale copy could
    be anyway."""

    def __init__(self, link: RedisShared, ttl: float = 30.0) -> None:
        super().__init__(ttl)
        self.link = link
        self._ttl_ms = max(1, round(ttl * 1000))
        self._newcomer_stored = link.redis.register_script(_NEWCOMER_STORED)

    async def lookup(self, tg_id: int) -> User | Newcomer | None:
        key = self.link.key("user", tg_id)
        try:
            raw = await self.link.run(lambda: self.link.redis.get(key))
        except Unavailable:
            return None
        if raw is None:
            return None
        return NEWCOMER if raw == _ABSENT else _decode(raw)

    async def put(self, tg_id: int, user: User | Newcomer) -> None:
        key, value = self.link.key("user", tg_id), _ABSENT if user is NEWCOMER else _encode(user)
        await self.link.attempt(lambda: self.link.redis.set(key, value, px=self._ttl_ms))

    async def forget(self, tg_id: int | str) -> None:
        key = self.link.key("user", int(tg_id))
        await self.link.attempt(lambda: self.link.redis.delete(key))

    async def newcomer_stored(self, tg_id: int, user: User) -> None:
        keys = [self.link.key("user", tg_id)]
        args: list[bytes | int] = [_encode(user), self._ttl_ms]
        await self.link.attempt(lambda: self._newcomer_stored(keys=keys, args=args))


def _encode(user: User | Newcomer) -> bytes:
    assert isinstance(user, User)
    fields = dataclasses.asdict(user)
    fields["created_at"] = user.created_at.isoformat()
    return json.dumps(fields, separators=(",", ":")).encode()


def _decode(raw: bytes | str) -> User | None:
    """The row, or None (a miss) for an entry this version cannot read: written by an older or newer
    release during a rolling upgrade, say."""
    try:
        fields = json.loads(raw)
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        return User(**fields)
    except (ValueError, TypeError, KeyError):
        return None


# --------------------------------------------------------------------------------------------- pacing

# A send slot for the bot: taken when it is due, else how long until it is (microseconds). Taken only when
# due, so the pace is measured between sends that really go (see ``SendPacer``).
# KEYS: when the next slot is due. ARGV: the interval in microseconds.
_NEXT_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local due = tonumber(redis.call('GET', KEYS[1]) or 0)
if due > now then
  return due - now
end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], now + interval, 'PX', math.ceil(interval / 1000) + 1000)
return 0
"""


class SharedSendPacer(SendPacer):
    """``SendPacer`` for all instances: one slot every ``1 / per_second`` seconds for the bot (key ``name``:
    the overall pace, or the broadcasts' share of it). This process's waiters still line up one at a time,
    and each asks Redis when its turn is; while Redis is away, the process paces itself alone."""

    def __init__(self, link: RedisShared, name: str, per_second: float) -> None:
        super().__init__(per_second)
        self.link = link
        self._key = link.key("pace", name)
        self._interval_us = max(1, round(self.interval * 1_000_000))
        self._script = link.redis.register_script(_NEXT_SLOT)

    async def _take(self) -> None:
        keys, args = [self._key], [self._interval_us]
        while True:
            try:
                wait = int(await self.link.run(lambda: self._script(keys=keys, args=args)))
            except Unavailable:
                await super()._take()
                return
            if wait <= 0:
                self._next = time.monotonic() + self.interval  # in step, should Redis go away
                return
            await asyncio.sleep(wait / 1_000_000)


# ``GroupPacer``'s window on a sorted set per key (scores: microseconds of the slots handed out). KEYS: the
# set. ARGV: the allowance, the gap and the window in microseconds, a unique member, 1 to pace (``slot``)
# else 0 (``allow``: counted, not paced). Returns the wait in microseconds, or -1: the window is full.
_GROUP_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return -1
end
local at = now
if ARGV[5] == '1' then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    at = math.max(now, tonumber(last[2]) + tonumber(ARGV[2]))
  end
end
redis.call('ZADD', KEYS[1], at, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((at - now + window) / 1000) + 1)
return at - now
"""


class SharedGroupPacer(GroupPacer):
    """``GroupPacer`` for all instances: a group's 20 messages a minute count what every instance posts
    there. While Redis is away, each process counts its own."""

    def __init__(self, link: RedisShared, per_minute: int, *, gap: float, window: float = 61.0) -> None:
        super().__init__(per_minute, gap=gap, window=window)
        self.link = link
        self._script = link.redis.register_script(_GROUP_SLOT)
        self._members = (f"{secrets.token_hex(4)}:{n}" for n in itertools.count())

    async def slot(self, key: Hashable) -> float | None:
        try:
            return await self._run(key, self.per_minute, pace=True)
        except Unavailable:
            return await super().slot(key)

    async def allow(self, key: Hashable, limit: int) -> bool:
        try:
            return await self._run(key, limit, pace=False) is not None
        except Unavailable:
            return await super().allow(key, limit)

    async def _run(self, key: Hashable, limit: int, *, pace: bool) -> float | None:
        name = ":".join(map(str, key)) if isinstance(key, tuple) else str(key)
        keys = [self.link.key("group", name)]
        args: list[Any] = [limit, round(self.gap * 1e6), round(self.window * 1e6), next(self._members)]
        args.append(int(pace))
        micros = int(await self.link.run(lambda: self._script(keys=keys, args=args)))
        return None if micros < 0 else micros / 1_000_000
