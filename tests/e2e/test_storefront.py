"""Every storefront flow, end to end: real aiogram over HTTP against the Bot API emulator."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from core import tables as t
from core.models import OrderStatus
from tests.conftest import query
from tests.e2e.conftest import ADMIN, Shop

BUYER, OTHER = 501, 502


async def count(shop: Shop, table: t.Table) -> int:  # type: ignore[name-defined]
    ((n,),) = await query(shop.services, select(func.count()).select_from(table))
    return int(n)


async def test_start_greets_in_the_users_language_with_the_main_menu(shop: Shop) -> None:
    shop.emu.user(BUYER, "Ann", "en")
    shop.emu.user(OTHER, "李雷", "zh-hans")
    en = await shop.say(BUYER, "/start")
    zh = await shop.say(OTHER, "/start")
    assert "Welcome, Ann" in en.text and en.buttons[0]["text"] == "🛍 Catalog"
    assert "欢迎，李雷" in zh.text and zh.buttons[0]["text"] == "🛍 商品"


async def test_commands_are_registered_in_both_languages(shop: Shop) -> None:
    assert [c["command"] for c in shop.emu.commands[""]] == [
        "start",
        "catalog",
        "orders",
        "invite",
        "share",
        "withdraw",
        "language",
        "help",
    ]
    assert shop.emu.commands["zh"][1]["description"] == "浏览商品"


async def test_a_buyer_pays_with_stars_and_receives_the_key_behind_a_spoiler(shop: Shop) -> None:
    pid = await shop.product(keys=3, validity_days=30)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)  # /catalog, then two taps: product, Buy 1
    inv = invoice.message["invoice"]
    assert (inv["currency"], inv["total_amount"]) == ("XTR", 50)
    paid = await shop.emu.pay(BUYER, invoice)
    assert paid["paid"]
    keys = await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    assert "<tg-spoiler><code>KEY-" in keys.message["_html"] and "Valid until" in keys.text
    assert await shop.services.stock.available(pid) == 2


async def test_many_keys_arrive_as_a_text_file(shop: Shop) -> None:
    await shop.product(keys=30, max_qty=20)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    qty = await shop.tap(BUYER, card, "Choose quantity")
    invoice = await shop.tap(BUYER, qty, "20")
    await shop.emu.pay(BUYER, invoice)
    doc = await shop.emu.wait_for(BUYER, lambda s: s.method == "sendDocument")
    name, data = shop.emu.files[doc.message["document"]["file_id"]]
    lines = data.decode().split()
    assert name.endswith(".txt") and len(lines) == len(set(lines)) == 20
    assert "20 keys" in doc.text


async def test_two_buyers_race_for_the_last_key_and_the_loser_is_never_charged(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    cards = []
    for who in (BUYER, OTHER):
        listing = await shop.say(who, "/catalog")
        cards.append(await shop.tap(who, listing, "Steam"))
    await asyncio.gather(
        *(
            shop.emu.tap(who, card, card.button("Buy")["callback_data"])
            for who, card in zip((BUYER, OTHER), cards, strict=True)
        )
    )
    # the loser's card says why, and the winner gets the invoice (each tap answered before either)
    told = [
        asyncio.ensure_future(shop.emu.wait_for(who, lambda s: "not enough stock" in s.text))
        for who in (BUYER, OTHER)
    ]
    done, _ = await asyncio.wait(told, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    for f in told:
        f.cancel()
    loser = BUYER if told[0] in done else OTHER
    winner = OTHER if loser == BUYER else BUYER
    invoice = await shop.emu.wait_for(winner, lambda s: s.method == "sendInvoice")
    await asyncio.sleep(0.3)
    assert not [s for s in shop.emu.messages(loser) if s.method == "sendInvoice"]
    assert (await shop.emu.pay(winner, invoice))["paid"]
    await shop.emu.wait_for(winner, lambda s: "delivered" in s.text)
    assert [p.user_id for p in shop.emu.payments.values()] == [winner]


async def test_a_replayed_successful_payment_delivers_once(shop: Shop) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    charge = (await shop.emu.pay(BUYER, invoice))["charge_id"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    await shop.emu.deliver_payment(BUYER, charge)  # Telegram sends the same update again
    await asyncio.sleep(0.5)
    assert sum("delivered" in s.text for s in shop.emu.messages(BUYER)) == 1
    assert await count(shop, t.payments) == 1


async def test_forged_and_stale_buttons_are_refused_and_change_nothing(shop: Shop) -> None:
    pid = await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    menu = await shop.say(BUYER, "/start")
    for data, expected, told_in_chat in [
        ("b:999:1:0", "no longer exists", True),  # a product that does not exist
        ("b:abc:1:0", "out of date", False),  # not even a number
        ("zz:1", "out of date", False),  # no such button at all
        (f"b:{pid}:50:0", "between 1 and 5", True),  # more than the product allows
        (f"b:{pid}:-1:0", "out of date", False),  # quantities are bounded when parsed
        ("l:fr", "out of date", False),  # a language we do not have
        ("k:NOTYOURORDER", "Order not found", False),  # someone else's (or no) order
    ]:
        before = len(shop.emu.messages(BUYER))
        qid = await shop.tap_data(BUYER, menu, data)
        answer = await shop.answer_to(qid)
        if told_in_chat:  # a Buy tap is answered at once; why it was refused comes in the chat
            await shop.emu.wait_for(BUYER, lambda s, e=expected: e in s.text, after=before)
        else:
            assert expected in str(answer["text"]), (data, answer)
    assert await count(shop, t.orders) == 0
    assert await shop.services.stock.available(pid) == 2


async def test_pre_checkout_after_the_reservation_expired_is_refused_and_nothing_is_charged(
    shop: Shop,
) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    shop.clock.advance(minutes=16)
    result = await shop.emu.pay(BUYER, invoice)
    assert result == {"paid": False, "error": "This order has expired. Please order again."}
    assert shop.emu.payments == {}
    await shop.services.orders.expire_due()
    assert await shop.services.stock.available(pid) == 1


async def test_a_payment_that_cannot_be_fulfilled_is_refunded_and_the_buyer_told(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    late = await shop.buy_one(BUYER)
    # Ann's payment arrives after the sweeper took the key back and Bob bought it.
    invoice_ref = late.message["_payload"]
    shop.clock.advance(minutes=16)
    await shop.services.orders.expire_due()
    quick = await shop.buy_one(OTHER)
    await shop.emu.pay(OTHER, quick)
    await shop.emu.wait_for(OTHER, lambda s: "delivered" in s.text)
    charge = shop.emu.charge(BUYER, "XTR", 50, invoice_ref).charge_id
    await shop.emu.deliver_payment(BUYER, charge)
    told = await shop.emu.wait_for(BUYER, lambda s: "refunded" in s.text)
    assert "sold out" in told.text and shop.emu.payments[charge].refunded
    order = await shop.services.orders.get(invoice_ref)
    assert order.status is OrderStatus.REFUNDED


async def test_telegram_answering_429_and_500_during_delivery_only_delays_it(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    shop.emu.fail_next("sendMessage", 429, retry_after=1)
    shop.emu.fail_next("sendMessage", 500)
    await shop.emu.pay(BUYER, invoice)
    keys = await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text, within=10)
    assert "KEY-" in keys.text
    for _ in range(100):  # the sender marks the message sent just after Telegram accepted it
        (row,) = await query(shop.services, select(t.outbox.c.status, t.outbox.c.attempts))
        if row.status == "sent":
            break
        await asyncio.sleep(0.05)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_a_buyer_who_blocked_the_bot_is_marked_and_finds_the_keys_in_my_orders_later(
    shop: Shop,
) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    shop.emu.block(BUYER)
    await shop.emu.pay(BUYER, invoice)
    for _ in range(100):
        if (await shop.services.users.ensure("telegram", str(BUYER))).bot_blocked:
            break
        await asyncio.sleep(0.05)
    assert await query(shop.services, select(t.outbox.c.status)) == [("failed",)]
    shop.emu.block(BUYER, False)
    orders = await shop.say(BUYER, "/orders")
    assert "delivered" in orders.text
    keys = await shop.tap(BUYER, orders, "Keys of")
    assert "KEY-" in keys.text
    assert not (await shop.services.users.ensure("telegram", str(BUYER))).bot_blocked


async def test_my_orders_shows_keys_again_and_every_reveal_is_audited(shop: Shop) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    await shop.emu.pay(BUYER, await shop.buy_one(BUYER))
    first = await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    orders = await shop.say(BUYER, "/orders")
    again = await shop.tap(BUYER, orders, "Keys of")
    assert again.text == first.text
    q = select(t.audit_log.c.detail).where(t.audit_log.c.action == "keys_revealed")
    reasons = [d["reason"] for (d,) in await query(shop.services, q)]
    assert reasons == ["delivery", "my_orders"]


async def test_a_pending_order_can_be_cancelled_from_my_orders(shop: Shop) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    await shop.buy_one(BUYER)
    assert await shop.services.stock.available(pid) == 0
    orders = await shop.say(BUYER, "/orders")
    qid = await shop.emu.tap(BUYER, orders, orders.button("Cancel")["callback_data"])
    assert "cancelled" in str((await shop.answer_to(qid))["text"])
    assert await shop.services.stock.available(pid) == 1


async def test_language_command_switches_to_chinese(shop: Shop) -> None:
    shop.emu.user(BUYER, "Ann", "en")
    choose = await shop.say(BUYER, "/language")
    done = await shop.tap(BUYER, choose, "简体中文")
    assert done.text == "已切换为简体中文。"
    helped = await shop.say(BUYER, "/help")
    assert "购买流程" in helped.text


async def test_unknown_commands_and_out_of_stock_cards_get_clear_answers(shop: Shop) -> None:
    await shop.product(keys=0)
    shop.emu.user(BUYER, "Ann")
    assert "don't know that command" in (await shop.say(BUYER, "/frobnicate")).text
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    assert "Out of stock" in card.text and not any("Buy" in b["text"] for b in card.buttons)


async def test_a_product_that_needs_a_phone_asks_for_it_and_accepts_only_the_users_own(shop: Shop) -> None:
    await shop.product(keys=2, requires_phone=True)
    shop.emu.user(BUYER, "Ann")
    ask = await shop.buy_one(BUYER)
    assert "phone number" in ask.text
    await shop.emu.share_contact(BUYER, "+8613800000000")
    await shop.emu.wait_for(BUYER, lambda s: "saved" in s.text)
    invoice = await shop.buy_one(BUYER)
    assert invoice.method == "sendInvoice"


@pytest.mark.expect_errors
async def test_unexpected_errors_get_an_apology_and_reach_the_admins_without_secrets(shop: Shop) -> None:
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    await shop.services.users.ensure("telegram", str(BUYER))  # a buyer with orders to look at

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire: SECRET-KEY-123")

    shop.services.orders.history = broken  # type: ignore[method-assign]
    reply = await shop.say(BUYER, "/orders")
    assert "went wrong" in reply.text
    report = await shop.emu.wait_for(ADMIN, lambda s: "RuntimeError" in s.text)
    assert "SECRET" not in report.text


async def test_with_a_fiat_provider_token_the_same_flow_takes_the_shop_currency(shop: Shop) -> None:
    # replace the fixture's bot with one that has a provider token
    await shop.rebuild(payment_provider_token="PROVIDER:TEST", shop_currency="USD")
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    invoice = await shop.tap(BUYER, card, "💳")
    inv = invoice.message["invoice"]
    assert (inv["currency"], inv["total_amount"]) == ("USD", 990)
    provider_tokens = [p.get("provider_token") for m, p in shop.emu.calls if m == "sendInvoice"]
    assert provider_tokens == ["PROVIDER:TEST"]
    await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    assert await shop.services.stock.available(pid) == 0


async def test_a_payment_whose_update_was_lost_is_found_in_the_stars_ledger_and_delivered(shop: Shop) -> None:
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    # The charge happens, but the successful_payment update never reaches the bot (it crashed meanwhile).
    shop.emu.charge(BUYER, "XTR", invoice.message["invoice"]["total_amount"], invoice.message["_payload"])
    assert await shop.front.ledger.reconcile() == 1
    keys = await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    assert "KEY-" in keys.text
    assert await shop.front.ledger.reconcile() == 0  # nothing new; nothing delivered twice
    await asyncio.sleep(0.3)
    assert sum("delivered" in s.text for s in shop.emu.messages(BUYER)) == 1
    # After a restart the ledger is read from where it was left, not from the beginning.
    from handlers.telegram.workers.reconcile import StarLedger

    restarted = StarLedger(shop.front.bot, shop.services, shop.front.outbox)
    await restarted.reconcile()
    offsets = [int(p.get("offset") or 0) for m, p in shop.emu.calls if m == "getStarTransactions"]
    assert offsets[-1] == 1


async def test_an_empty_category_says_so_rather_than_that_nothing_is_for_sale(shop: Shop) -> None:
    await shop.services.catalog.add_category("Empty")
    full = await shop.services.catalog.add_category("Games")
    await shop.product(keys=1, category_id=full)
    shop.emu.user(BUYER, "Ann", "zh-hans")
    cats = await shop.say(BUYER, "/catalog")
    empty = await shop.tap(BUYER, cats, "Empty")
    assert empty.text == "📭 Empty 分类下暂无在售商品。" and empty.button("Games")
    shop.emu.user(OTHER, "Bob")
    cats = await shop.say(OTHER, "/catalog")
    assert (await shop.tap(OTHER, cats, "Empty")).text == "📭 Empty has no products on sale at the moment."


async def test_choose_quantity_on_a_product_taken_off_sale_says_it_is_unavailable(shop: Shop) -> None:
    """On the card, rather than offering quantities to buy; the tap itself is answered first."""
    pid = await shop.product(keys=5)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    await shop.services.catalog.update_product(pid, active=False)
    before = len(shop.emu.messages(BUYER))
    qid = await shop.tap_data(BUYER, card, card.button("Choose quantity")["callback_data"])
    told = await shop.emu.wait_for(BUYER, lambda s: "not on sale" in s.text, after=before)
    assert (await shop.answer_to(qid))["text"] in (None, "")
    assert told.method == "editMessageText" and told.text == "Steam 10 is not on sale at the moment."
    assert [b["text"] for b in told.buttons] == ["« Back"]  # no quantities offered


async def test_quantities_offered_keep_the_stars_total_within_one_telegram_invoice(shop: Shop) -> None:
    """Telegram refuses a Stars invoice over 10,000 Stars: at 3,000 Stars each, at most 3 per order."""
    await shop.product(keys=10, price_stars=3_000, max_qty=10)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    choose = await shop.tap(BUYER, card, "Choose quantity")
    assert [b["text"] for b in choose.buttons] == ["1", "2", "3", "« Back"]
    invoice = await shop.tap(BUYER, choose, "3")
    assert invoice.message["invoice"]["total_amount"] == 9_000
