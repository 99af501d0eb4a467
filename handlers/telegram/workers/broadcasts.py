"""Broadcasts under way in this process: their recipients are written chunk by chunk (the outbox sender
is woken after each, and sends them in its broadcast lane), and the admin's one progress message is edited
at most every ``every`` seconds, only when what it says changed (Telegram refuses an edit that changes
nothing), with a last edit when the broadcast ends. A broadcast left unfinished by a stopped process is
taken up again when the bot starts (``resume``).

With several bot processes on one database, only the one leading a broadcast (``BroadcastService.hold``)
writes its recipients and edits its message; the others wait, and take the lead when it lets go (stopping)
or its lease runs out (crashing). What the message says is kept as a digest on the broadcast, so whoever
leads next edits it only when the figures changed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
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
        self.name = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"  # this process
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._held: set[int] = set()

    def run(self, bot: Bot, broadcast_id: int, *, shown: str | None = None) -> None:
        """Take a confirmed broadcast through to its end (once per process, while it leads it); ``shown``:
        what its progress message says now."""
        if broadcast_id in self._tasks:
            return
        task = asyncio.create_task(self._run(bot, broadcast_id, shown), name=f"broadcast-{broadcast_id}")
        self._tasks[broadcast_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(broadcast_id, None))

    async def resume(self, bot: Bot) -> None:
        for row in await self.services.broadcasts.unfinished():
            self.run(bot, row.id)

    async def stop(self) -> None:
        """Stop, and let go of the broadcasts this process leads: another takes them up at once."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for broadcast_id in sorted(self._held):
            with contextlib.suppress(Exception):
                await self.services.broadcasts.let_go(broadcast_id, runner=self.name)
        self._held.clear()

    async def _run(self, bot: Bot, broadcast_id: int, shown: str | None) -> None:
        bc = self.services.broadcasts
        edited_at = time.monotonic() if shown is not None else float("-inf")
        writing = True
        while True:
            try:
                lead = await bc.hold(broadcast_id, runner=self.name)
                if lead is None:  # finished (by whoever led it), or unknown
                    self._held.discard(broadcast_id)
                    return
                if not lead:  # another process leads it
                    self._held.discard(broadcast_id)
                    await asyncio.sleep(self.every)
                    continue
                if broadcast_id not in self._held:
                    self._held.add(broadcast_id)
                    if shown is not None:  # the confirmation drew it
                        await bc.shown(broadcast_id, _digest(shown), runner=self.name)
                        shown = None
                if writing:
                    writing = await bc.enqueue_next(broadcast_id)
                    self.outbox.wake()
                if time.monotonic() - edited_at < self.every:
                    if not writing:
                        await asyncio.sleep(self.every / 4)
                    continue
                p = await bc.progress(broadcast_id)
                edited_at = time.monotonic()
                await self._show(bot, p)
                if p.finished:
                    self._held.discard(broadcast_id)
                    await bc.let_go(broadcast_id, runner=self.name)
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast %s: a step failed; trying again", broadcast_id)
                await asyncio.sleep(self.every)

    async def _show(self, bot: Bot, p: Progress) -> None:
        """Edit the progress message when what it says changed (the digest kept on the broadcast)."""
        b = p.broadcast
        if b.progress_chat is None or b.progress_message_id is None:
            return
        locale = b.progress_language if b.progress_language in self.i18n.available_locales else "en"
        with self.i18n.context(), self.i18n.use_locale(locale):
            text, markup = progress_view(p)
        digest = _digest(text)
        if digest == b.progress_shown:
            return
        try:
            await self._edit(bot, b.progress_chat, b.progress_message_id, text, markup)
        except TelegramRetryAfter as e:
            await asyncio.sleep(e.retry_after)
            return
        except TelegramBadRequest as e:
            if "not modified" not in e.message.lower():
                log.info("broadcast %s: progress message not edited: %s", b.id, e.message)
        except TelegramForbiddenError:
            log.info("broadcast %s: the admin blocked the bot; progress not shown", b.id)
        await self.services.broadcasts.shown(b.id, digest, runner=self.name)

    @staticmethod
    async def _edit(
        bot: Bot, chat: str, message_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        await bot.edit_message_text(text=text, chat_id=int(chat), message_id=message_id, reply_markup=markup)


def _digest(text: str) -> str:
    """What a progress message says, in 32 characters (its buttons follow from its text)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]
