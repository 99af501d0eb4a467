"""The admin router in the real dispatcher, end to end: an admin's private message reaches a screen
registered on it here (it has no commands yet); a buyer, the admin in a group and an anonymous admin get
what they got before, and what no admin screen handles goes on to the buyer routers."""

from __future__ import annotations

import asyncio

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from tests.e2e.conftest import ADMIN, Shop

OPERATOR = 900_002  # a second admin: the fixture takes any message to ADMIN for an alert
BUYER = 601
GROUP = -1001234567890


def _admin_router(shop: Shop) -> Router:
    return next(r for r in shop.front.dp.sub_routers if r.name == "handlers.telegram.admin")


async def test_only_an_admin_in_private_reaches_the_admin_router_and_everything_else_goes_on(
    shop: Shop,
) -> None:
    shop.emu.user(OPERATOR, "Operator")
    shop.emu.user(BUYER, "Ann")
    await shop.rebuild(admin_ids=[ADMIN, OPERATOR])
    seen: list[int] = []

    async def stock_screen(message: Message) -> None:
        assert message.from_user is not None
        seen.append(message.from_user.id)
        await message.answer("admin: stock")

    async def stock_button(query: CallbackQuery) -> None:
        seen.append(query.from_user.id)
        await query.answer("admin: stock")

    router = _admin_router(shop)
    router.message.register(stock_screen, Command("stock"))
    router.callback_query.register(stock_button, F.data == "admin:stock")

    assert (await shop.say(OPERATOR, "/stock")).text == "admin: stock"
    assert seen == [OPERATOR]
    menu = await shop.say(OPERATOR, "/start")  # not an admin screen: the buyer's welcome, as before
    assert "Welcome, Operator" in menu.text
    answer = await shop.answer_to(await shop.tap_data(OPERATOR, menu, "admin:stock"))
    assert answer["text"] == "admin: stock"
    assert seen == [OPERATOR, OPERATOR]

    buyer_reply = await shop.say(BUYER, "/stock")
    assert "admin: stock" not in buyer_reply.text
    buyer_menu = await shop.say(BUYER, "/start")
    answer = await shop.answer_to(await shop.tap_data(BUYER, buyer_menu, "admin:stock"))
    assert "out of date" in str(answer["text"])

    group = shop.emu.group(GROUP, "Gamers", members=[OPERATOR], admins=[OPERATOR])
    await shop.emu.send_text(OPERATOR, "/stock", chat=group)
    assert "private chat" in (await shop.emu.wait_for(GROUP)).text
    await shop.emu.send_anonymous(group, "/stock")
    await asyncio.sleep(0.5)  # give the bot time to (not) answer
    assert len(shop.emu.messages(GROUP)) == 1
    assert seen == [OPERATOR, OPERATOR]
