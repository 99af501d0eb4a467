"""Who may use an admin screen: the shop's owners (``ADMIN_IDS``) and its staff (admins and operators added
with /staff), each in their private chat with the bot, and only for what their role allows (``Has``).

Admin screens show the shop's stock, orders and buyers, so a group never sees them, even when the admin is
a member: an admin there gets what anyone gets. An anonymous group admin (posting as the group), a channel
or another bot is nobody's admin."""

from __future__ import annotations

from typing import Any

from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message, TelegramObject

from core.roles import Grant, Power
from core.services import Services

CHANNEL = "telegram"


def sender_in_private(event: TelegramObject) -> int | None:
    """The Telegram id of the person behind a private message or a tap in a private chat; None for
    anything else (a group, a channel, an anonymous admin, a bot, a business account's customer)."""
    if isinstance(event, CallbackQuery):
        chat = event.message.chat if event.message is not None else None
        sender_chat = None
    elif isinstance(event, Message):
        if event.business_connection_id is not None:  # a customer of the admin's business account
            return None
        chat, sender_chat = event.chat, event.sender_chat
    else:
        return None
    user = event.from_user
    if user is None or user.is_bot or sender_chat is not None:
        return None
    if chat is None or chat.type != ChatType.PRIVATE:
        return None
    return user.id


class StaffOnly(Filter):
    """Passes an update sent by an owner or a staff member in a private chat, handing the handlers their
    ``grant``; ``admin_ids`` and ``services`` come from the dispatcher's workflow data. Any update type may
    come here: one without a private chat and a person behind it is nobody's admin screen."""

    async def __call__(
        self, event: TelegramObject, admin_ids: list[int], services: Services
    ) -> bool | dict[str, Any]:
        tg_id = sender_in_private(event)
        if tg_id is None:
            return False
        grant = await services.staff.grant_for(CHANNEL, str(tg_id), owner=tg_id in admin_ids)
        return {"grant": grant} if grant is not None else False


class Has(Filter):
    """Passes when the grant (set by ``StaffOnly``) includes ``power``. A staff member without it falls
    through to the admin router's last handlers, which tell them it is not for their role."""

    def __init__(self, power: Power) -> None:
        self.power = power

    async def __call__(self, event: TelegramObject, grant: Grant) -> bool:
        return grant.may(self.power)
