"""Telegram's flood limits, kept by the bot itself: about 30 messages a second overall (``SendPacer``) and
20 a minute per group (``GroupPacer``); see TELEGRAM_LIMITS.md.

One ``SendPacer`` per bot is shared by everything that sends a message: the outbox sender's deliveries
and the handlers' own replies and invoices (``session.BotRequests``). In a flash sale hundreds of invoices
are due at once; sent as fast as the handlers produce them, most would meet 429 and the reservations they
were made for would be released. Paced, each waits its turn (the tap was answered long before) and
Telegram takes them all.

With ``REDIS_URL`` several ``keyshop run`` processes serve one bot, and Telegram counts the bot's messages,
not a process's: ``shared.SharedSendPacer`` and ``shared.SharedGroupPacer`` keep these same limits in Redis,
for all of them together."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable


class SendPacer:
    """Hands out send slots at least ``1 / per_second`` apart, in the order they were asked for, measured
    from when each send really goes: after the event loop was busy for a while, the sends it held back
    still leave one slot apart instead of all at once (which Telegram would answer with 429)."""

    def __init__(self, per_second: float = 30.0) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def turn(self) -> None:
        """Wait for the next slot."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one waiter at a time: slots go in the order they were asked for
            await self._take()

    async def _take(self) -> None:
        wait = self._next - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next = time.monotonic() + self.interval


class GroupPacer:
    """Telegram's 20 messages a minute per group (TELEGRAM_LIMITS.md), kept by the bot for what it posts in
    groups while handling updates (shared product cards, the "open me in private" replies): at most
    ``per_minute`` messages in any ``window`` seconds, each at least ``gap`` seconds after the one before
    (Telegram's per-chat pace of about one a second). The window is a little over a minute: a send leaves a
    moment after its slot, and Telegram counts when it arrives.

    A message beyond that is not queued: ``slot`` answers None and the caller drops it. A card posted
    minutes after it was asked for, behind a pile of others, is spam in the group, not a sale; the sharer is
    better told to try again. The same allowance, keyed otherwise, bounds anything per key and minute (a
    sharer's cards in one group)."""

    def __init__(
        self,
        per_minute: int = 20,
        *,
        gap: float = 1.0,
        window: float = 61.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.per_minute, self.gap, self.window, self.clock = per_minute, gap, window, clock
        self.max_keys = max_keys
        self._slots: dict[Hashable, deque[float]] = {}

    async def slot(self, key: Hashable) -> float | None:
        """Seconds to wait before sending (0: now), the message counted; None when ``key``'s window is
        full (nothing counted)."""
        now = self.clock()
        slots = self._window(key, now)
        if len(slots) >= self.per_minute:
            return None
        at = max(now, slots[-1] + self.gap) if slots else now
        slots.append(at)
        return at - now

    async def allow(self, key: Hashable, limit: int) -> bool:
        """One more use of ``key``'s own allowance of ``limit`` per window (counted, not paced); False
        when it is used up (nothing counted)."""
        now = self.clock()
        slots = self._window(key, now)
        if len(slots) >= limit:
            return False
        slots.append(now)
        return True

    def _window(self, key: Hashable, now: float) -> deque[float]:
        slots = self._slots.get(key)
        if slots is None:
            if len(self._slots) >= self.max_keys:
                self._forget_idle(now)
            slots = self._slots[key] = deque()
        while slots and slots[0] <= now - self.window:
            slots.popleft()
        return slots

    def _forget_idle(self, now: float) -> None:
        """Bounded memory: keys with nothing in the window are forgotten (they have their whole allowance)."""
        self._slots = {k: s for k, s in self._slots.items() if s and s[-1] > now - self.window}
        if len(self._slots) >= self.max_keys:  # a flood of busy keys: start afresh rather than grow
            self._slots.clear()
