"""Alerts to the shop's admins (errors, refunds that need a hand, payments that could not be kept).

Rate-limited per kind, so nothing a buyer does can flood the admins' chats: the first alert of a kind goes
out at once, later ones of the same kind within ``window`` are counted and summed up in the next one.
Everything is logged whether or not it is sent. Texts are HTML; callers escape what they interpolate.
"""

from __future__ import annotations

import logging
import time

from aiogram import Bot

log = logging.getLogger(__name__)


class AdminAlerts:
    def __init__(self, bot: Bot, admin_ids: list[int], *, window: float = 60.0) -> None:
        self.bot, self.admin_ids, self.window = bot, list(admin_ids), window
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.sent = 0  # alerts that went out (tests and benchmarks read it)

    async def notify(self, text: str, *, kind: str) -> bool:
        """Send ``text`` to every admin unless an alert of this ``kind`` went out within the window.
        Returns whether it was sent. Never raises: an admin who blocked the bot is only logged."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.window:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            log.info("admin alert %s suppressed (rate limit)", kind)
            return False
        self._last[kind] = now
        if len(self._last) > 10_000:  # bounded memory: kinds are few, but never trust that
            self._last = {kind: now}
        more = self._suppressed.pop(kind, 0)
        if more:
            text += f"\n(+{more} more like this in the last {int(self.window)} s)"
        for admin in self.admin_ids:
            try:
                await self.bot.send_message(admin, text)
            except Exception as e:  # an admin who blocked the bot, a network error: logged, not fatal
                log.warning("could not alert admin %s: %s", admin, type(e).__name__)
        self.sent += 1
        return True
