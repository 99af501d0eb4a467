"""Who may use an admin screen: one of the shop's admins (``ADMIN_IDS``), in their private chat with the
bot. Admin screens show the shop's stock, orders and buyers, so a group never sees them, even when the
admin is a member: an admin there gets what anyone gets. An anonymous group admin (posting as the group),
a channel or another bot is nobody's admin."""

from __future__ import annotations

from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message, TelegramObject


class AdminOnly(Filter):
    """Passes an update sent by an admin in a private chat; ``admin_ids`` comes from the dispatcher's
    workflow data. Any update type may come here: one without a private chat and a person behind it (an
    inline query, a business message, a poll, a chat member change…) is nobody's admin screen."""

    async def __call__(self, event: TelegramObject, admin_ids: list[int]) -> bool:
        if isinstance(event, CallbackQuery):
            chat = event.message.chat if event.message is not None else None
            sender_chat = None
        elif isinstance(event, Message):
            if event.business_connection_id is not None:  # a customer of the admin's business account
                return False
            chat, sender_chat = event.chat, event.sender_chat
        else:
            return False
        user = event.from_user
        return (
            user is not None
            and not user.is_bot
            and sender_chat is None
            and user.id in admin_ids
            and chat is not None
            and chat.type == ChatType.PRIVATE
        )
