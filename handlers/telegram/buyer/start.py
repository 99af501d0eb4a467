"""/start (with an optional referral deep link), /help, the main menu, and anything unrecognised."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from core.models import User, UserIdentity
from core.services import Services
from handlers.telegram.buyer import catalog
from handlers.telegram.chats import private_router
from handlers.telegram.filters import When
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import MenuCb
from handlers.telegram.ui.deeplinks import parse_start
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, reply, tr, tr_plain

log = logging.getLogger(__name__)


async def start(
    message: Message,
    command: CommandObject,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    user_cache: UserCache,
    fiat_currency: str | None,
    locale: str,
) -> None:
    """Receives: /start and /start <payload>: an invite link (``deeplinks``) attributes a new user to the
    distributor and may open a product's card; any other payload is a plain /start."""
    link = parse_start(command.args)
    if link is not None:
        arrival = await services.referrals.arrive(shop_user or identity, link.code)
        if arrival.attributed:  # the newcomer's row was made for it
            await user_cache.forget(int(identity.external_id))
    name = message.from_user.first_name if message.from_user else ""
    await message.answer(tr("start-welcome", name=name), reply_markup=keyboards.main_menu())
    if link is not None and link.product_id is not None:
        await catalog.open_card(message, link.product_id, services, fiat_currency, locale)


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
