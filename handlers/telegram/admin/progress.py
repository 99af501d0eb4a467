"""One message that shows a long task's progress: edited at most every ``EDIT_EVERY`` seconds, then once more
with the outcome.

Telegram limits edits like messages (a chat edited many times a second meets 429s) and refuses an edit that
changes nothing ("message is not modified"), so figures are offered as often as the task likes and shown
only when an edit is due, none is on its way and the text changed. The interval is measured from the end of
the previous edit, so Telegram never sees two edits closer than that, however slow one of them was."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup, Message

log = logging.getLogger(__name__)

EDIT_EVERY = 2.0  # seconds between two edits of a progress message


class ProgressMessage:
    """``message``: the bot's message to edit, just sent or edited with ``shown`` (that showing counts as
    the first). ``clock``: seconds (``time.monotonic`` in the shop; tests may hand one they can observe)."""

    def __init__(
        self, message: Message, shown: str, *, clock: Callable[[], float], every: float = EDIT_EVERY
    ) -> None:
        self.message, self.clock, self.every = message, clock, every
        self._shown = shown
        self._last = clock()
        self._editing: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        """Show ``text`` if an edit is due; otherwise let it go (a later offer shows newer figures)."""
        if self._editing is not None and not self._editing.done():
            return
        if text == self._shown or self.clock() - self._last < self.every:
            return
        self._editing = asyncio.create_task(self._edit(text), name="progress-edit")

    async def _edit(self, text: str) -> None:
        try:
            await self.message.edit_text(text)
            self._shown = text
        except (TelegramBadRequest, TelegramRetryAfter) as e:  # progress is best effort; the outcome is not
            log.info("progress message %s not edited: %s", self.message.message_id, e)
        finally:
            self._last = self.clock()

    async def finish(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """The last edit, with the outcome, once the interval since the previous edit is over. A message
        that can no longer be edited is replaced by a new one."""
        if self._editing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._editing
        # polled, not slept in one go: ``clock`` need not run at the event loop's pace
        while (wait := self.every - (self.clock() - self._last)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(wait, 0.1))
        for attempt in (1, 2):
            try:
                await self.message.edit_text(text, reply_markup=markup)
                return
            except TelegramRetryAfter as e:
                if attempt == 2:
                    raise
                await asyncio.sleep(e.retry_after)
            except TelegramBadRequest as e:
                if "message is not modified" in e.message.lower():
                    return
                log.info(
                    "progress message %s cannot be edited (%s): sending the outcome",
                    self.message.message_id,
                    e,
                )
                await self.message.answer(text, reply_markup=markup)
                return
            finally:
                self._last = self.clock()
