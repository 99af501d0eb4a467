"""/start (with an optional referral deep link), /help, the main menu, and anything unrecognised."""

from __future__ import annotations

import logging
import re

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from core.models import User, UserIdentity
from core.services import Services
from handlers.telegram.chats import private_router
from handlers.telegram.filters import When
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import MAX_ID, MenuCb
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, reply, tr, tr_plain

log = logging.getLogger(__name__)

# Telegram's deep-link payload: up to 64 characters of A-Z a-z 0-9 _ -
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
_REFERRAL = re.compile(r"r([1-9][0-9]{0,18})")


def referrer_of(payload: str | None) -> int | None:
    """The referrer's user id in a ``/start r<id>`` payload; None for anything else (another kind of
    link such as an invoice's ``order-<REF>``, or something forged), which is then a plain /start."""
    if not payload or not _PAYLOAD.fullmatch(payload):
        return None
    m = _REFERRAL.fullmatch(payload)
    if m is None:
        return None
    referrer = int(m.group(1))
    return referrer if referrer <= MAX_ID else None


async def start(
    message: Message,
    command: CommandObject,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    user_cache: UserCache,
) -> None:
    """Receives: /start and /start <payload> (a referral link ``r<user id>``; others are a plain /start)."""
    referrer = referrer_of(command.args)
    if referrer is not None:  # the referral is kept: the newcomer's row is made for it
        user = await services.users.stored(shop_user or identity)
        user_cache.forget(int(identity.external_id))
        await services.users.set_referrer_once(user.id, referrer)
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(tr("start-welcome", name=name), reply_markup=keyboards.main_menu())


async def help_(event: Message | CallbackQuery, reservation_minutes: int) -> None:
    """Receives: /help, and the Help button of the main menu."""
    await reply(event, tr("help-text", minutes=reservation_minutes))


async def unknown_command(message: Message) -> None:
    """Receives: any command no other handler took."""
    log.info("unknown command %r", (message.text or "")[:32])
    await message.answer(tr("unknown-command"))


async def free_text(message: Message) -> None:
    """Receives: plain text that is not a command: show the menu."""
    await message.answer(
        tr("start-welcome", name=message.from_user.first_name if message.from_user else ""),
        reply_markup=keyboards.main_menu(),
    )


async def stale_button(query: CallbackQuery) -> None:
    """Receives: callback data no other handler parses (forged, or from an old version of the bot)."""
    log.info("unparseable callback data %r", (query.data or "")[:64])
    await acknowledge(query, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.callback_query.register(help_, MenuCb.filter(F.action == "help"))
    router.message.register(unknown_command, When(F.text.startswith("/")))
    router.message.register(free_text, When(F.text))
    router.callback_query.register(stale_button)
    return router
