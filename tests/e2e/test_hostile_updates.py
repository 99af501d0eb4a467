"""Hostile or unusual updates, end to end: forged data, HTML in admins' names, double taps, groups and
anonymous senders, big catalogs, a buyer whose app changes language. None of it may log an error or
alert the admins (the fixture checks), unless a test says it expects that."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from core import tables as t
from core.services.catalog import ProductDraft
from tests.conftest import query
from tests.e2e.conftest import ADMIN, Shop

BUYER, OTHER = 601, 602
GROUP = -1001234567890
GROUP_CHANNEL = -1009876543210


async def _quiet(shop: Shop, seconds: float = 0.5) -> None:
    """Give the bot time to (not) answer."""
    await asyncio.sleep(seconds)


async def test_callback_data_with_unbounded_or_non_ascii_numbers_is_a_stale_button_and_alerts_nobody(
    shop: Shop,
) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    menu = await shop.say(BUYER, "/start")
    for data in ("p:99999999999999999999", "p:²", "c:１２:0", "q:9223372036854775808", "b:1:99999999999:0"):
        qid = await shop.tap_data(BUYER, menu, data)
        assert "out of date" in str((await shop.answer_to(qid))["text"]), data
    await _quiet(shop)
    assert shop.emu.messages(ADMIN) == []
    assert await query(shop.services, select(func.count()).select_from(t.orders)) == [(0,)]


async def test_start_with_a_forged_or_foreign_payload_is_a_plain_start(shop: Shop) -> None:
    shop.emu.user(BUYER, "Ann")
    for payload in ("r²", "r１２", "r99999999999999999999", "order-ABCDEFGH", "r" + "1" * 70):
        reply = await shop.say(BUYER, f"/start {payload}")
        assert "Welcome, Ann" in reply.text, payload
    buyer = await shop.services.users.ensure("telegram", str(BUYER))
    assert buyer.referrer_id is None


async def test_html_characters_in_admin_names_show_literally_in_cards_buttons_and_invoices(
    shop: Shop,
) -> None:
    name = "Tom & Jerry <3 <Card>"
    cid = await shop.services.catalog.add_category("Gifts & <Cards>")
    pid = await shop.product(keys=2, name=name, description="I <3 you & a < b", category_id=cid)
    shop.emu.user(BUYER, "Ann")
    cats = await shop.say(BUYER, "/catalog")
    assert cats.button("Gifts & <Cards>")
    listing = await shop.tap(BUYER, cats, "Gifts & <Cards>")
    assert "Gifts & <Cards>" in listing.text
    card = await shop.tap(BUYER, listing, name)
    assert card.text.startswith(f"{name}\nI <3 you & a < b\n")
    invoice = await shop.tap(BUYER, card, "Buy")
    inv = invoice.message["invoice"]
    assert inv["title"] == name[:32] and name in inv["description"] and "&amp;" not in inv["description"]
    labels = [p["label"] for m, p in shop.emu.calls if m == "sendInvoice" for p in p["prices"]]
    assert labels == [f"{name} × 1"]
    await shop.services.catalog.update_product(pid, active=False)
    qid = await shop.tap_data(BUYER, card, f"p:{pid}")
    assert name in str((await shop.answer_to(qid))["text"])


async def test_tapping_the_same_button_twice_answers_both_taps_and_is_no_error(shop: Shop) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    before_edit = copy.deepcopy(listing.message)  # what a slow client still shows
    data = listing.button("Steam")["callback_data"]
    card = await shop.tap(BUYER, listing, "Steam")
    assert "Price" in card.text
    # the same message again: nothing changed, so nothing is edited
    again = await shop.tap_data(BUYER, listing, data)
    # a double tap racing the first edit: Telegram answers "message is not modified"
    stale = await shop.tap_data(BUYER, before_edit, data)
    for qid in (again, stale):
        assert (await shop.answer_to(qid))["text"] in (None, "")
    await _quiet(shop)
    edits = [s for s in shop.emu.messages(BUYER) if s.method == "editMessageText"]
    assert len(edits) == 1


@pytest.mark.expect_errors  # Telegram failing the invoice is unexpected: logged and reported
async def test_a_failure_after_the_callback_was_answered_is_told_in_a_message_not_a_second_answer(
    shop: Shop,
) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    shop.emu.fail_next("sendInvoice", 500)
    before = len(shop.emu.messages(BUYER))
    qid = await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    told = await shop.emu.wait_for(BUYER, lambda s: "went wrong" in s.text, after=before)
    assert told.method == "sendMessage"
    assert "One moment" in str((await shop.answer_to(qid))["text"])  # the one answer: the handler's own
    answers = [p for m, p in shop.emu.calls if m == "answerCallbackQuery" and p["callback_query_id"] == qid]
    assert len(answers) == 1


async def test_in_a_group_commands_get_an_open_in_private_link_and_nothing_personal_or_anonymous_is_answered(
    shop: Shop,
) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    await shop.buy_one(BUYER)  # a pending order: /orders in private would list it with a Cancel button
    group = shop.emu.group(GROUP, "Gamers", members=[BUYER], admins=[BUYER])
    channel = shop.emu.channel(GROUP_CHANNEL, "News")
    private_before = len(shop.emu.messages(BUYER))
    await shop.emu.send_text(BUYER, "hello everyone", chat=group)  # chatter: ignored
    await shop.emu.send_text(BUYER, "/orders@other_bot", chat=group)  # another bot's command: ignored
    await shop.emu.send_anonymous(group, "/start")  # an anonymous admin: ignored, no crash
    await shop.emu.channel_post(channel, "/start")  # a channel post has no sender: ignored
    # another bot in the group (the emulator plays people; a bot's message is built by hand)
    other_bot = {"id": 7_000_000_777, "is_bot": True, "first_name": "Other", "username": "other_bot"}
    await shop.emu._push(
        message={
            "message_id": 999_999,
            "date": int(time.time()),
            "chat": group.chat(),
            "from": other_bot,
            "text": "/orders",
            "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        }
    )
    await shop.emu.send_text(BUYER, "/orders", chat=group)
    await shop.emu.send_text(BUYER, "/start@keyshop_sandbox_bot", chat=group)
    await shop.emu.wait_for(GROUP, after=1)
    await _quiet(shop)
    replies = shop.emu.messages(GROUP)
    assert len(replies) == 2
    for r in replies:
        assert "private chat" in r.text
        assert r.buttons == [{"text": "Open the shop", "url": "https://t.me/keyshop_sandbox_bot?start=group"}]
    assert shop.emu.messages(GROUP_CHANNEL) == []
    order = await shop.services.orders.history((await shop.services.users.ensure("telegram", str(BUYER))).id)
    assert not any(line.order.ref in r.text for r in replies for line in order)
    assert len(shop.emu.messages(BUYER)) == private_before
    # the deep link opens the private chat with a plain /start
    assert "Welcome, Ann" in (await shop.say(BUYER, "/start group")).text


async def test_150_products_and_120_categories_are_paged_within_telegrams_keyboard_limits(shop: Shop) -> None:
    cids = [await shop.services.catalog.add_category(f"Category {i:03d}") for i in range(120)]
    for i in range(150):
        await shop.services.catalog.add_product(
            ProductDraft(name=f"Item {i:03d}", price=100, price_stars=5, category_id=cids[0])
        )
    shop.emu.user(BUYER, "Ann")

    def check(sent: Any) -> None:
        rows = sent.message["reply_markup"]["inline_keyboard"]
        assert sum(len(r) for r in rows) <= 100 and all(len(r) <= 8 for r in rows)

    page = await shop.say(BUYER, "/catalog")
    seen: set[str] = set()
    while True:
        check(page)
        seen |= {b["text"] for b in page.buttons if b["text"].startswith("Category")}
        if not any(b["text"] == "▶️" for b in page.buttons):
            break
        await asyncio.sleep(0.3)  # a person reading, not a flood
        page = await shop.tap(BUYER, page, "▶️")
    assert len(seen) == 120 and "Page 4 of 4" in page.text
    await asyncio.sleep(0.3)
    page = await shop.tap(BUYER, page, "◀️")
    await asyncio.sleep(0.3)
    page = await shop.tap(BUYER, page, "◀️")
    await asyncio.sleep(0.3)
    page = await shop.tap(BUYER, page, "◀️")
    await asyncio.sleep(0.3)
    page = await shop.tap(BUYER, page, "Category 000")
    items: set[str] = set()
    while True:
        check(page)
        items |= {b["text"] for b in page.buttons if b["text"].startswith("Item")}
        if not any(b["text"] == "▶️" for b in page.buttons):
            break
        await asyncio.sleep(0.3)
        page = await shop.tap(BUYER, page, "▶️")
    assert len(items) == 150


async def test_a_buyer_who_never_picked_a_language_follows_telegrams_language_code(shop: Shop) -> None:
    await shop.product(keys=1)
    user = shop.emu.user(BUYER, "Ann", "en")
    await shop.services.users.ensure("telegram", str(BUYER), language="en")  # a buyer who bought before
    assert "Welcome, Ann" in (await shop.say(BUYER, "/start")).text
    user.language_code = "zh-hans"  # the buyer switched their Telegram app to Chinese
    assert "欢迎，Ann" in (await shop.say(BUYER, "/start")).text
    stored = await shop.services.users.ensure("telegram", str(BUYER))
    assert (stored.language, stored.language_chosen) == ("zh_CN", False)  # the outbox writes in it too
    # Once chosen with /language, the choice sticks whatever the app's language
    choose = await shop.say(BUYER, "/language")
    await asyncio.sleep(0.5)
    assert (await shop.tap(BUYER, choose, "English")).text == "Language set to English."
    await asyncio.sleep(0.5)
    assert "Welcome, Ann" in (await shop.say(BUYER, "/start")).text
    stored = await shop.services.users.ensure("telegram", str(BUYER))
    assert (stored.language, stored.language_chosen) == ("en", True)


async def test_looking_around_writes_nothing_and_a_first_buy_creates_the_buyer_in_its_own_language(
    shop: Shop,
) -> None:
    """A newcomer who only browses leaves no row behind (a flash sale's crowd costs no writes before it
    buys); their first Buy creates them, in the language their Telegram app speaks."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann", "zh-hans")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    await shop.say(BUYER, "/orders")
    assert await shop.services.users.find("telegram", str(BUYER)) is None
    await shop.tap(BUYER, card, "购买")
    await shop.emu.wait_for(BUYER, lambda s: s.method == "sendInvoice")
    stored = await shop.services.users.find("telegram", str(BUYER))
    assert stored is not None and (stored.language, stored.language_chosen) == ("zh_CN", False)


async def test_a_flood_limit_that_outlasts_the_one_wait_is_no_error_and_alerts_nobody(shop: Shop) -> None:
    """A buyer who writes and taps faster than Telegram lets the bot answer (one message a second per
    chat) meets 429 twice: the reply is dropped, the tap still gets exactly one answer, and nothing is
    logged as an error or reported to the admins (the fixture checks)."""
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    shop.emu.fail_next("sendMessage", 429, retry_after=1, times=2)
    await shop.emu.send_text(BUYER, "hello?")
    shop.emu.fail_next("editMessageText", 429, retry_after=1, times=2)
    qid = await shop.tap_data(BUYER, listing, listing.button("Steam")["callback_data"])
    await shop.answer_to(qid, within=8.0)
    await _quiet(shop, 2.5)
    answers = [p for m, p in shop.emu.calls if m == "answerCallbackQuery" and p["callback_query_id"] == qid]
    assert len(answers) == 1
    assert not [f for f in shop.emu.faults if f[0] == "sendMessage"]  # both 429s were met


async def test_names_with_html_and_invisible_characters_are_shown_literally_in_the_welcome(
    shop: Shop,
) -> None:
    name = "<b>Eve</b> & \u202eevil\u200b"
    shop.emu.user(BUYER, name)
    reply = await shop.say(BUYER, "/start")
    assert name in reply.text
