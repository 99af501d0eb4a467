"""Sharing products in chats: inline mode and /share. Every card carries the sharer's link
(``https://t.me/<bot>?start=r<code>_p<id>``): whoever opens it lands on the product's card in private and,
if new to the shop, is the sharer's (``buyer.start``).

- Inline mode (BotFather /setinline): ``@bot words`` in any chat lists the matching products on sale
  (``services.sharing``); picking one posts its card in that chat as the sharer's own message. Answers are
  personal (the links carry the sharer's code) and cached briefly. A blocklisted user gets no results.
- ``/share ID`` in a group the bot is in posts the product's card there; in private it shows the card as
  a preview, and ``/share`` alone says how to share and lists what is on sale. Anonymous admins and
  channels never get here (``chats.SendersMiddleware``): a card needs a person to credit.

Posting in a group keeps Telegram's 20 messages a minute there (``pacing.GroupPacer``, shared with the
bot's other posts in groups), and one person's /share gets at most ``SHARES_PER_SHARER`` posts per group
and minute, so a flood of /share (or of garbage after it) can neither spam the group nor use up its
allowance for everyone else. What does not fit is dropped, not queued: a card posted minutes late behind a
pile of others sells nothing and annoys the group. The sharer is told once, in private, to try again in a
minute. A group where the bot may not post (restricted by its admins) drops the card too, and the sharer is
told why, in private; nobody else is bothered.
"""

from __future__ import annotations

import asyncio
import logging
import re

from aiogram import Bot, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramRetryAfter
from aiogram.filters import Command, CommandObject
from aiogram.types import ChosenInlineResult, InlineKeyboardMarkup, InlineQuery, Message

from core.models import User, UserIdentity
from core.services import Services
from handlers.telegram.chats import may_not_post
from handlers.telegram.middlewares import CHANNEL, UserCache
from handlers.telegram.pacing import GroupPacer
from handlers.telegram.ui import sharing
from handlers.telegram.ui.callbacks import MAX_ID
from handlers.telegram.ui.text import pick_locale, tr

log = logging.getLogger(__name__)

CACHE_SECONDS = 30  # how long Telegram may reuse an answer for the same sharer and words
SHARES_PER_SHARER = 5  # posts one person's /share may make in one group per minute
LIST_MAX = 30  # products listed by /share in private
_ID = re.compile(r"[1-9][0-9]{0,18}")
_OFFSET = re.compile(r"0|[1-9][0-9]{0,5}")


def product_id(args: str | None) -> int | None:
    """The product number after /share: ASCII digits, no sign or leading zero, within a BIGINT."""
    text = (args or "").strip()
    return int(text) if _ID.fullmatch(text) and int(text) <= MAX_ID else None


async def inline_query(
    query: InlineQuery,
    bot: Bot,
    services: Services,
    user_cache: UserCache,
    shop_user: User | None = None,
    identity: UserIdentity | None = None,
) -> None:
    """Receives: an inline query, ``@bot words`` typed in any chat (the offset is the one we gave)."""
    who = shop_user or identity
    offset = int(query.offset) if _OFFSET.fullmatch(query.offset) else 0
    code = None
    if who is not None and not (shop_user is not None and shop_user.blocklisted):
        found = await services.sharing.search(query.query, offset=offset)
        if found.items:
            code = await services.sharing.code(who)
    if code is None:  # nothing matches, or a blocklisted sharer
        await query.answer([], cache_time=CACHE_SECONDS, is_personal=True)
        return
    if shop_user is None:
        await user_cache.forget(query.from_user.id)  # their row was made with their code
    username = (await bot.me()).username or ""
    await query.answer(
        [sharing.inline_result(username, s, code) for s in found.items],
        cache_time=CACHE_SECONDS,
        is_personal=True,
        next_offset="" if found.next_offset is None else str(found.next_offset),
    )


async def chosen(result: ChosenInlineResult) -> None:
    """Receives: chosen_inline_result (BotFather /setinlinefeedback): a card was posted from the results."""
    log.info("user %s shared %s inline", result.from_user.id, result.result_id[:32])


async def share(
    message: Message,
    command: CommandObject,
    bot: Bot,
    services: Services,
    user_cache: UserCache,
    group_pacer: GroupPacer,
    shop_user: User | None = None,
    identity: UserIdentity | None = None,
) -> None:
    """Receives: /share and /share ID, in a group or supergroup the bot is in, or in private."""
    sender = message.from_user
    assert sender is not None  # a person (chats.SendersMiddleware)
    username = (await bot.me()).username or ""
    pid = product_id(command.args)
    shared = await services.sharing.shareable(pid) if pid is not None else None
    if shared is None:
        text = tr("share-usage", bot=username) if pid is None else tr("share-not-found", id=pid)
        if message.chat.type == ChatType.PRIVATE and pid is None:
            found = await services.sharing.search("", limit=LIST_MAX)
            lines = [tr("share-list-line", id=s.product.id, name=s.product.name) for s in found.items]
            text = "\n".join([text, "", *lines]) if lines else text
        await _post(message, bot, group_pacer, text)
        return
    who = shop_user or identity or _identity(message)
    code = await services.sharing.code(who)
    if code is None:  # blocklisted: a refusal in private, silence in a group
        log.info("share by blocklisted user %s refused", sender.id)
        if message.chat.type == ChatType.PRIVATE:
            await message.answer(tr("share-refused"))
        return
    if shop_user is None:
        await user_cache.forget(sender.id)  # their row was made with their code
    markup = sharing.buy_button(username, shared, code)
    if await _post(message, bot, group_pacer, sharing.card_text(shared), markup):
        log.info("user %s shared product %s in chat %s", sender.id, shared.product.id, message.chat.id)


def _identity(message: Message) -> UserIdentity:
    """Who wrote a group message (groups load no shop user: ``ShopUserMiddleware``)."""
    tg = message.from_user
    assert tg is not None
    handle = tg.username.lower() if tg.username else None
    return UserIdentity(CHANNEL, str(tg.id), pick_locale(tg.language_code), handle)


async def _post(
    message: Message, bot: Bot, pacer: GroupPacer, text: str, markup: InlineKeyboardMarkup | None = None
) -> bool:
    """Answer in the chat; in a group within its allowance and the sender's (see the module docstring).
    True if it was posted."""
    if message.chat.type == ChatType.PRIVATE:
        await message.answer(text, reply_markup=markup)
        return True
    chat, sender = message.chat.id, message.from_user.id if message.from_user else 0
    allowed = await pacer.allow(("sharer", chat, sender), SHARES_PER_SHARER)
    wait = await pacer.slot(chat) if allowed else None
    if wait is None:
        log.info("chat %s: /share by %s dropped, the minute's allowance is used", chat, sender)
        await _tell(bot, pacer, chat, sender, "share-group-busy")
        return False
    await asyncio.sleep(wait)
    try:
        await message.answer(text, reply_markup=markup)
    except TelegramRetryAfter as e:  # another instance posted there too: Telegram's count is the truth
        log.info("chat %s: flood limit met (retry after %s s), /share dropped", chat, e.retry_after)
        await _tell(bot, pacer, chat, sender, "share-group-busy")
        return False
    except TelegramBadRequest as e:
        if not may_not_post(e):
            raise
        log.info("chat %s: may not post there (%s), /share by %s dropped", chat, e.message, sender)
        await _tell(bot, pacer, chat, sender, "share-group-refused")
        return False
    return True


async def _tell(bot: Bot, pacer: GroupPacer, chat: int, sender: int, key: str) -> None:
    """Tell the sharer in private, once a minute per group, why their card was not posted (``key``)."""
    if not await pacer.allow(("told", chat, sender), 1):
        return
    try:
        await bot.send_message(sender, tr(key))
    except TelegramAPIError as e:  # never opened the bot, blocked it, or busy: the group stays quiet
        log.info("could not tell user %s why their card is not posted: %s", sender, e.message)


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher): inline queries from any chat,
    /share in private chats and in groups (commands for another bot, ``/share@other_bot``, are not ours)."""
    router = Router(name=__name__)
    router.inline_query.register(inline_query)
    router.chosen_inline_result.register(chosen)
    router.message.register(share, Command("share"))
    return router
