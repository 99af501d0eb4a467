"""/invite: the user's personal invite link (their referral code), as text and as a QR code, with how often
it was opened and how many new users it brought."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from core.models import User, UserIdentity
from core.services import Services
from handlers.telegram.chats import private_router
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui.deeplinks import StartLink, deep_link
from handlers.telegram.ui.qr import qr_png
from handlers.telegram.ui.text import tr


async def invite(
    message: Message,
    bot: Bot,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    user_cache: UserCache,
) -> None:
    """Receives: /invite (the code is made at the first one, and the user's row with it)."""
    user = await services.users.stored(shop_user or identity)
    if shop_user is None:
        user_cache.forget(int(identity.external_id))
    code = await services.referrals.invite(user.id)
    me = await bot.me()
    link = deep_link(me.username or "", StartLink(code.code))
    photo = BufferedInputFile(qr_png(link), filename=f"invite-{code.code}.png")
    await message.answer_photo(
        photo, caption=tr("invite-text", link=link, opens=code.opens, starts=code.starts)
    )


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.message.register(invite, Command("invite"))
    return router
