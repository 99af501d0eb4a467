"""Telegram's overall flood limit, kept by the bot itself: about 30 messages a second (TELEGRAM_LIMITS.md).

One ``SendPacer`` per bot is shared by everything that sends a message: the outbox sender's deliveries
and the handlers' own replies and invoices (``session.BotRequests``). In a flash sale hundreds of invoices
are due at once; sent as fast as the handlers produce them, most would meet 429 and the reservations they
were made for would be released. Paced, each waits its turn (the tap was answered long before) and
Telegram takes them all."""

from __future__ import annotations

import asyncio
import time


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
        async with self._lock:
            wait = self._next - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next = time.monotonic() + self.interval
