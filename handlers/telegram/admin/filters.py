"""Who may use an admin screen: one of the shop's admins (``ADMIN_IDS``), in their private chat with the
bot. Admin screens show the shop's stock, orders and buyers, so a group never sees them, even when the
admin is a member: an admin there gets what anyone gets. An anonymous group admin (posting as the group),
a channel or another bot is nobody's admin."""

from __future__ import annotations

from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message


class AdminOnly(Filter):
    """Passes a message or callback query sent by an admin in a private chat; ``admin_ids`` comes from the
    dispatcher's workflow data."""

    async def __call__(self, event: Message | CallbackQuery, admin_ids: list[int]) -> bool:
        if isinstance(event, CallbackQuery):
            chat = event.message.chat if event.message is not None else None
            sender_chat = None
        else:
            chat, sender_chat = event.chat, event.sender_chat
        user = event.from_user
        return (
            user is not None
            and not user.is_bot
            and sender_chat is None
            and user.id in admin_ids
            and chat is not None
            and chat.type == ChatType.PRIVATE
        )
