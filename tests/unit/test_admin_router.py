"""The admin router's gate: only the shop's admins, in their private chat with the bot, reach an admin
screen. Updates are fed to a dispatcher holding just that router, with a handler registered on it here
(and staff added and removed through the staff service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.types import CallbackQuery, Chat, Message, Update, User

from core.roles import Role
from core.services import Services
from handlers.telegram import admin

ADMIN, BUYER = 900_001, 601
GROUP = -1001234567890
ANONYMOUS_ADMIN = User(id=1087968824, is_bot=True, first_name="Group", username="GroupAnonymousBot")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _user(user_id: int) -> User:
    return User(id=user_id, is_bot=False, first_name=f"user{user_id}")


def _private(user_id: int) -> Chat:
    return Chat(id=user_id, type="private")


def _group() -> Chat:
    return Chat(id=GROUP, type="supergroup", title="Gamers")


def _message(sender: User | None, chat: Chat, *, sender_chat: Chat | None = None) -> Message:
    return Message(
        message_id=1, date=NOW, chat=chat, from_user=sender, sender_chat=sender_chat, text="/stock"
    )


def _tap(sender: User, chat: Chat) -> CallbackQuery:
    """A tap on a button under one of the bot's messages in ``chat``."""
    shown = Message(message_id=2, date=NOW, chat=chat, text="stock")
    return CallbackQuery(id="1", from_user=sender, chat_instance="1", message=shown, data="admin:stock")


@dataclass
class AdminScreens:
    dp: Dispatcher
    bot: Bot
    seen: list[Message | CallbackQuery] = field(default_factory=list)

    async def reaches(self, event: Message | CallbackQuery) -> bool:
        """Whether the update reaches the handler registered on the admin router."""
        before = len(self.seen)
        if isinstance(event, Message):
            update = Update(update_id=1, message=event)
        else:
            update = Update(update_id=1, callback_query=event)
        await self.dp.feed_update(self.bot, update)
        return len(self.seen) > before


@pytest.fixture
async def screens(shop: Services) -> AsyncIterator[AdminScreens]:
    router = admin.build()
    dp = Dispatcher()
    dp.workflow_data.update(admin_ids=[ADMIN], services=shop)  # as build_dispatcher provides them
    dp.include_router(router)
    bot = Bot("42:TEST-token")  # nothing is sent: the handler only records
    screens = AdminScreens(dp, bot)

    async def screen(event: Message | CallbackQuery) -> None:
        screens.seen.append(event)

    router.message.register(screen)
    router.callback_query.register(screen)
    try:
        yield screens
    finally:
        await bot.session.close()


async def test_an_admin_in_their_private_chat_reaches_the_admin_screens(screens: AdminScreens) -> None:
    assert await screens.reaches(_message(_user(ADMIN), _private(ADMIN)))
    assert await screens.reaches(_tap(_user(ADMIN), _private(ADMIN)))


async def test_a_buyer_never_reaches_the_admin_screens(screens: AdminScreens) -> None:
    assert not await screens.reaches(_message(_user(BUYER), _private(BUYER)))
    assert not await screens.reaches(_tap(_user(BUYER), _private(BUYER)))


async def test_an_admin_in_a_group_does_not_reach_the_admin_screens(screens: AdminScreens) -> None:
    assert not await screens.reaches(_message(_user(ADMIN), _group()))
    assert not await screens.reaches(_tap(_user(ADMIN), _group()))


async def test_an_anonymous_sender_does_not_reach_the_admin_screens(screens: AdminScreens) -> None:
    # an anonymous group admin posts as the group, through GroupAnonymousBot
    assert not await screens.reaches(_message(ANONYMOUS_ADMIN, _group(), sender_chat=_group()))
    # a message with no sender at all, and one sent on behalf of a chat by an admin's own account
    assert not await screens.reaches(_message(None, _private(ADMIN)))
    assert not await screens.reaches(_message(_user(ADMIN), _private(ADMIN), sender_chat=_group()))
    assert screens.seen == []


async def test_a_shop_without_admins_has_no_admin_screens(screens: AdminScreens) -> None:
    screens.dp.workflow_data["admin_ids"] = []
    assert not await screens.reaches(_message(_user(ADMIN), _private(ADMIN)))


async def test_no_admin_router_handler_of_any_update_type_is_reached_by_a_buyer(
    screens: AdminScreens,
) -> None:
    # AdminOnly gates only router.message and router.callback_query: a handler an admin feature registers
    # on edited_message, business_message, inline_query, ... of the admin router sees everyone.
    seen: list[Message] = []
    router = screens.dp.sub_routers[0]

    async def probe(event: Message) -> None:
        seen.append(event)

    router.edited_message.register(probe)
    router.business_message.register(probe)
    edited = _message(_user(BUYER), _private(BUYER))
    await screens.dp.feed_update(screens.bot, Update(update_id=1, edited_message=edited))
    await screens.dp.feed_update(screens.bot, Update(update_id=2, business_message=edited))
    assert seen == []


async def test_staff_reach_the_admin_screens_until_they_are_removed(
    screens: AdminScreens, shop: Services
) -> None:
    assert not await screens.reaches(_message(_user(BUYER), _private(BUYER)))
    await shop.staff.put("telegram", str(BUYER), Role.OPERATOR, actor="telegram:1", owners=[str(ADMIN)])
    assert await screens.reaches(_message(_user(BUYER), _private(BUYER)))
    assert await screens.reaches(_tap(_user(BUYER), _private(BUYER)))
    assert not await screens.reaches(_message(_user(BUYER), _group()))  # staff too: private chats only
    await shop.staff.remove("telegram", str(BUYER), actor="telegram:1")
    assert not await screens.reaches(_message(_user(BUYER), _private(BUYER)))


def test_every_command_an_admin_screen_takes_is_refused_to_everyone_else_as_an_unknown_one() -> None:
    from aiogram.filters import Command

    from handlers.telegram.admin.refusals import ADMIN_COMMANDS

    def commands(router: Router) -> set[str]:
        found: set[str] = set()
        for handler in router.message.handlers:
            for f in handler.filters or []:
                if isinstance(f.callback, Command):
                    found.update(str(c) for c in f.callback.commands)
        for sub in router.sub_routers:
            found |= commands(sub)
        return found

    taken = commands(admin.build())
    assert taken and taken <= set(ADMIN_COMMANDS)
