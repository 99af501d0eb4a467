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
    """Hands out send slots ``1 / per_second`` apart, in the order they were asked for."""

    def __init__(self, per_second: float = 30.0) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0

    def reserve(self) -> float:
        """Take the next slot; returns how many seconds until it comes (0: now)."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def turn(self) -> None:
        """Wait for the next slot."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
