"""What the bot's HTTP session does around every Bot API call made while handling an update:

- remember which callback queries were answered, so the error handler knows whether it may still answer
  one (a second answer is refused by Telegram) or must send the user a message instead;
- wait out a short ``429 Too Many Requests`` once: a buyer tapping quickly meets Telegram's per-chat flood
  limit, and a reply a second late is better than none. The outbox sender has its own retry schedule, so
  calls made outside update handling are left alone;
- send messages (replies, invoices) at most as fast as Telegram takes them overall, on the one pacer the
  outbox sender also uses (``pacing.SendPacer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    ForwardMessage,
    SendAnimation,
    SendAudio,
    SendContact,
    SendDocument,
    SendInvoice,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendSticker,
    SendVideo,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import TelegramObject

from handlers.telegram.pacing import SendPacer
from handlers.telegram.telemetry import NoTelemetry, Telemetry

log = logging.getLogger(__name__)

INVOICE_WAITS = 3

# What counts against Telegram's ~30 messages a second: anything that posts a message (answers to
# queries and edits do not).
_MESSAGES = (
    SendMessage,
    SendInvoice,
    SendDocument,
    SendPhoto,
    SendMediaGroup,
    SendAnimation,
    SendAudio,
    SendVideo,
    SendVoice,
    SendSticker,
    SendContact,
    SendLocation,
    CopyMessage,
    ForwardMessage,
)

_IN_UPDATE: ContextVar[bool] = ContextVar("keyshop_in_update", default=False)


class AnsweredQueries:
    """Ids of the callback queries answered lately (bounded: a query expires after about 15 s anyway)."""

    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = max_size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, query_id: str) -> None:
        self._ids[query_id] = None
        if len(self._ids) > self.max_size:
            self._ids.popitem(last=False)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._ids


class BotRequests(BaseRequestMiddleware):
    """The session middleware described in the module docstring."""

    def __init__(
        self,
        answered: AnsweredQueries,
        *,
        max_wait: float = 3.0,
        pacer: SendPacer | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.answered, self.max_wait = answered, max_wait
        self.pacer = pacer
        self.telemetry: Telemetry = telemetry or NoTelemetry()

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            result = await self._send(make_request, bot, method)
        except TelegramBadRequest:
            # e.g. "query is too old": it can never be answered now, which for the error handler is the same
            if isinstance(method, AnswerCallbackQuery):
                self.answered.add(method.callback_query_id)
            raise
        if isinstance(method, AnswerCallbackQuery):
            self.answered.add(method.callback_query_id)
        return result

    async def _send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if self.pacer is not None and _IN_UPDATE.get() and isinstance(method, _MESSAGES):
            await self.pacer.turn()  # Telegram's ~30 messages a second, shared with the outbox
        # An invoice holds a reservation that is released if it cannot be sent: it waits out a few short
        # flood limits (a burst of invoices can bunch up when the event loop is busy); a reply waits once.
        waits = INVOICE_WAITS if isinstance(method, SendInvoice) else 1
        for _ in range(waits):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as e:
                if not _IN_UPDATE.get():
                    raise  # the outbox's (it counts its own) or a background call's
                self.telemetry.rate_limited("replies")
                if e.retry_after > self.max_wait:
                    raise
                log.info("%s: flood limit, retrying in %s s", type(method).__name__, e.retry_after)
                await asyncio.sleep(e.retry_after)
        return await make_request(bot, method)

    def install(self, bot: Bot) -> None:
        """Register on ``bot``'s session, once (the dispatcher's startup calls this for every start)."""
        if self not in bot.session.middleware:
            bot.session.middleware(self)


@contextlib.contextmanager
def replying() -> Iterator[None]:
    """Calls made inside are replies to an update (the error handler runs outside the middleware)."""
    token = _IN_UPDATE.set(True)
    try:
        yield
    finally:
        _IN_UPDATE.reset(token)


class InUpdateMiddleware(BaseMiddleware):
    """Marks the calls made while handling an update (see ``BotRequests``)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        with replying():
            return await handler(event, data)
