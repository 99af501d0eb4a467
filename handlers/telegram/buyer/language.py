"""/language: the buyer picks English or Simplified Chinese."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n

from core.models import User, UserIdentity
from core.services import Services
from handlers.telegram.chats import private_router
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import LanguageCb, MenuCb
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, reply, tr, tr_plain


async def choose(event: Message | CallbackQuery) -> None:
    """Receives: /language and the Language button."""
    await reply(event, tr("language-choose"), keyboards.languages())


async def chosen(
    query: CallbackQuery,
    callback_data: LanguageCb,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    i18n: I18n,
    user_cache: UserCache,
) -> None:
    """Receives: a language button. Unknown codes (forged data) are refused."""
    code = callback_data.code
    if code not in i18n.available_locales:
        await acknowledge(query, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)
        return
    user = await services.users.stored(shop_user or identity)
    await services.users.set_language(user.id, code)
    await user_cache.forget(query.from_user.id)
    with i18n.use_locale(code):
        await acknowledge(query)
        if query.message is not None:
            await query.message.answer(tr("language-set"), reply_markup=keyboards.main_menu())


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.message.register(choose, Command("language"))
    router.callback_query.register(choose, MenuCb.filter(F.action == "language"))
    router.callback_query.register(chosen, LanguageCb.filter())
    return router
