"""Which chats and senders the storefront talks to.

Buying is personal (orders, keys, the buttons that reveal them), so every buyer flow runs in the private
chat only. In a group or supergroup, a command addressed to the bot gets one short "open me in private"
reply with a deep link (but /share, which posts a product card there: ``buyer.share``); anything else said
there is ignored. Whatever the bot posts in a group keeps Telegram's 20 messages a minute there
(``pacing.GroupPacer``). Updates without a person behind them, an
anonymous group admin (posting as the group, through ``GroupAnonymousBot``), a channel post, another bot,
are dropped before any handler sees them: no reply, no error, no user created.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)

from handlers.telegram.filters import When
from handlers.telegram.pacing import GroupPacer
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, CALLBACK_ANSWER_MAX, tr, tr_plain

log = logging.getLogger(__name__)

PRIVATE = When(F.chat.type == ChatType.PRIVATE)
PRIVATE_CALLBACK = When(F.message.chat.type == ChatType.PRIVATE)


def private_router(name: str) -> Router:
    """A feature router whose messages and button taps come from private chats only (orders, keys and
    their buttons never go to a group)."""
    router = Router(name=name)
    router.message.filter(PRIVATE)
    router.callback_query.filter(PRIVATE_CALLBACK)
    return router


GROUPS = When(F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))
DEEP_LINK_PAYLOAD = "group"
# Telegram refusing the bot's post in a group it is in: the group's admins restricted the bot (or every
# member, in a read-only hour), the topic is closed. The group's choice, not a fault of the shop: no alert.
_MAY_NOT_POST = (
    "not enough rights",
    "have no rights",
    "chat_write_forbidden",
    "chat_restricted",
    "topic_closed",
)


def may_not_post(e: TelegramBadRequest) -> bool:
    """Whether Telegram refused a post in a group because the bot may not post there (see above)."""
    return any(s in e.message.lower() for s in _MAY_NOT_POST)


def _from_a_person(message: Message) -> bool:
    sender = message.from_user
    return sender is not None and not sender.is_bot and message.sender_chat is None


class SendersMiddleware(BaseMiddleware):
    """Drops messages that no person sent (see the module docstring). Payments always come from one."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Update):
            message = event.message or event.edited_message
            if message is not None and not _from_a_person(message):
                log.debug("ignored update %s: not sent by a person", event.update_id)
                return None
            if event.channel_post is not None or event.edited_channel_post is not None:
                return None
        return await handler(event, data)


async def _addressed_to_me(message: Message, bot: Bot) -> bool:
    """A command for this bot: ``/orders`` or ``/orders@this_bot``, not ``/orders@another_bot``."""
    command = (message.text or "").split(maxsplit=1)[0]
    if not command.startswith("/") or len(command) < 2:
        return False
    _, at, username = command.partition("@")
    if not at:
        return True
    me = await bot.me()
    return username.lower() == (me.username or "").lower()


async def deep_link(bot: Bot) -> InlineKeyboardMarkup:
    me = await bot.me()
    url = f"https://t.me/{me.username}?start={DEEP_LINK_PAYLOAD}"
    button = InlineKeyboardButton(text=tr_plain("group-open-button", limit=BUTTON_TEXT_MAX), url=url)
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def open_in_private(message: Message, bot: Bot, group_pacer: GroupPacer) -> None:
    """Receives: a command addressed to the bot in a group or supergroup. Within the group's allowance
    of Telegram's 20 messages a minute (shared with the cards posted there); beyond it, nothing."""
    wait = await group_pacer.slot(message.chat.id)
    if wait is None:
        log.info("chat %s: the minute's allowance is used, no reply", message.chat.id)
        return
    await asyncio.sleep(wait)
    # Groups often run a moderation bot that deletes every command at once: without a message to reply
    # to, Telegram would refuse a reply, so the answer then goes out as a plain message.
    reply_to = message.as_reply_parameters(allow_sending_without_reply=True)
    markup = await deep_link(bot)
    try:
        await message.answer(tr("group-open-private"), reply_markup=markup, reply_parameters=reply_to)
    except TelegramBadRequest as e:
        if not may_not_post(e):
            raise
        log.info("chat %s: may not post there (%s), no answer", message.chat.id, e.message)


async def group_button(query: CallbackQuery) -> None:
    """Receives: a callback query from a message outside a private chat (none of ours has buttons)."""
    await query.answer(tr_plain("group-open-private", limit=CALLBACK_ANSWER_MAX), show_alert=True)


def build() -> Router:
    """A fresh router for groups and supergroups (one per dispatcher)."""
    router = Router(name=__name__)
    router.message.register(open_in_private, GROUPS, When(F.text), _addressed_to_me)
    router.callback_query.register(group_button, ~PRIVATE_CALLBACK)
    return router
