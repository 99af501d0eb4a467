"""Broadcasts under way in this process: their recipients are written chunk by chunk (the outbox sender
is woken after each, and sends them in its broadcast lane), and the admin's one progress message is edited
at most every ``every`` seconds, only when what it says changed (Telegram refuses an edit that changes
nothing), with a last edit when the broadcast ends. A broadcast left unfinished by a stopped process is
taken up again when the bot starts (``resume``)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from core.services import Services
from core.services.broadcasts import Progress
from handlers.telegram.ui.broadcast import progress_view
from handlers.telegram.workers.outbox import OutboxSender

log = logging.getLogger(__name__)


class BroadcastRunner:
    def __init__(self, services: Services, outbox: OutboxSender, i18n: I18n, *, every: float = 3.0) -> None:
        self.services, self.outbox, self.i18n = services, outbox, i18n
        self.every = every
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def run(self, bot: Bot, broadcast_id: int, *, shown: str | None = None) -> None:
        """Take a confirmed broadcast through to its end (once per process); ``shown``: what its progress
        message says now."""
        if broadcast_id in self._tasks:
            return
        task = asyncio.create_task(self._run(bot, broadcast_id, shown), name=f"broadcast-{broadcast_id}")
        self._tasks[broadcast_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(broadcast_id, None))

    async def resume(self, bot: Bot) -> None:
        for row in await self.services.broadcasts.unfinished():
            self.run(bot, row.id)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, bot: Bot, broadcast_id: int, shown: str | None) -> None:
        edited_at = time.monotonic() if shown is not None else float("-inf")
        writing = True
        while True:
            try:
                if writing:
                    writing = await self.services.broadcasts.enqueue_next(broadcast_id)
                    self.outbox.wake()
                if time.monotonic() - edited_at < self.every:
                    if not writing:
                        await asyncio.sleep(self.every / 4)
                    continue
                p = await self.services.broadcasts.progress(broadcast_id)
                edited_at = time.monotonic()
                shown = await self._show(bot, p, shown)
                if p.finished:
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast %s: a step failed; trying again", broadcast_id)
                await asyncio.sleep(self.every)

    async def _show(self, bot: Bot, p: Progress, shown: str | None) -> str | None:
        """Edit the progress message when what it says changed; returns what it says now."""
        b = p.broadcast
        if b.progress_chat is None or b.progress_message_id is None:
            return shown
        locale = b.progress_language if b.progress_language in self.i18n.available_locales else "en"
        with self.i18n.context(), self.i18n.use_locale(locale):
            text, markup = progress_view(p)
        if text == shown:
            return shown
        try:
            await self._edit(bot, b.progress_chat, b.progress_message_id, text, markup)
        except TelegramRetryAfter as e:
            await asyncio.sleep(e.retry_after)
            return shown
        except TelegramBadRequest as e:
            if "not modified" not in e.message.lower():
                log.info("broadcast %s: progress message not edited: %s", b.id, e.message)
        except TelegramForbiddenError:
            log.info("broadcast %s: the admin blocked the bot; progress not shown", b.id)
        return text

    @staticmethod
    async def _edit(
        bot: Bot, chat: str, message_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        await bot.edit_message_text(text=text, chat_id=int(chat), message_id=message_id, reply_markup=markup)
