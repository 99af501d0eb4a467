"""Buy taps that arrive late, twice, too often, or whose invoice Telegram refuses: every tap is answered at
once (before the database), no stock is held for an invoice the buyer never got, and one buyer cannot hold
the shop's stock in unpaid reservations."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from core import tables as t
from handlers.telegram.ui.callbacks import LanguageCb
from sandbox.telegram import Sent
from tests.conftest import query
from tests.e2e.conftest import Shop

BUYER, OTHER = 701, 702


async def _count(shop: Shop, table: t.Table, *where: object) -> int:  # type: ignore[name-defined]
    q = select(func.count()).select_from(table)
    for w in where:
        q = q.where(w)  # type: ignore[arg-type]
    ((n,),) = await query(shop.services, q)
    return int(n)


async def _pending(shop: Shop) -> int:
    return await _count(shop, t.orders, t.orders.c.status == "pending")


async def _card(shop: Shop, user: int, name: str = "Steam") -> Sent:
    listing = await shop.say(user, "/catalog")
    return await shop.tap(user, listing, name)


async def _eventually(check: Any, within: float = 5.0) -> bool:
    """Whether the async ``check()`` comes true within ``within`` seconds."""
    for _ in range(int(within / 0.05)):
        if await check():
            return True
        await asyncio.sleep(0.05)
    return bool(await check())


# ---------------------------------------------------------------- answered at once, before the database


async def test_a_buy_tap_is_answered_before_its_order_is_made_so_a_slow_database_misses_no_deadline(
    shop: Shop,
) -> None:
    """A flash sale: reservations queue behind one another for longer than Telegram waits for an answer
    (~15 s; 0.5 s here, against a reservation that takes 1 s). The tap was answered before its order was
    made, so in time, and the invoice follows."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    card = await _card(shop, BUYER)
    checkout = shop.services.checkout.checkout_or_reuse
    answered_before: list[set[str]] = []

    async def slow_checkout(*args: Any, **kwargs: Any) -> Any:
        answered_before.append(set(shop.emu.callback_answers))
        await asyncio.sleep(1.0)
        return await checkout(*args, **kwargs)

    shop.services.checkout.checkout_or_reuse = slow_checkout  # type: ignore[method-assign]
    shop.emu.callback_ttl = 0.5
    qid = await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    invoice = await shop.emu.wait_for(BUYER, lambda s: s.method == "sendInvoice")
    assert answered_before and qid in answered_before[0], "the order was made before the tap was answered"
    assert shop.emu.callback_answers[qid] == {
        "text": "⏳ One moment, preparing your order…",
        "show_alert": False,
    }
    assert (await shop.emu.pay(BUYER, invoice))["paid"]


@pytest.mark.expect_errors  # a failing database is unexpected: logged and reported
@pytest.mark.parametrize(
    ("lang", "wait", "apology"),
    [
        ("en", "⏳ One moment, preparing your order…", "Something went wrong on our side."),
        ("zh-hans", "⏳ 请稍候，正在为您下单…", "系统出错，已通知店主，请稍后再试。"),
    ],
)
async def test_a_buy_tap_is_answered_even_when_the_database_fails_and_the_apology_comes_as_a_message(
    shop: Shop, lang: str, wait: str, apology: str
) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann", lang)
    card = await _card(shop, BUYER)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database is locked")

    shop.services.checkout.checkout_or_reuse = broken  # type: ignore[method-assign]
    before = len(shop.emu.messages(BUYER))
    qid = await shop.tap_data(BUYER, card, card.buttons[0]["callback_data"])
    told = await shop.emu.wait_for(BUYER, lambda s: apology in s.text, after=before)
    assert told.method == "sendMessage"
    assert shop.emu.callback_answers[qid] == {"text": wait, "show_alert": False}
    assert await _pending(shop) == 0 and await shop.services.stock.available(pid) == 1


@pytest.mark.expect_errors  # Telegram failing is unexpected: logged and reported
async def test_a_buy_tap_whose_answer_telegram_fails_reserves_nothing(shop: Shop) -> None:
    """Answering comes first: when even that fails (a Telegram 5xx), no order was made for an invoice that
    would never follow; the buyer gets the apology and taps again."""
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    card = await _card(shop, BUYER)
    shop.emu.fail_next("answerCallbackQuery", 500)
    qid = await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    await shop.answer_to(qid)
    await asyncio.sleep(0.5)
    assert await _pending(shop) == 0 and await shop.services.stock.available(pid) == 1


# ---------------------------------------------------------------- refusals arrive on the card, translated


@pytest.mark.parametrize(
    ("lang", "wait", "refused", "sold_out"),
    [
        (
            "en",
            "⏳ One moment, preparing your order…",
            "Sorry, not enough stock of Steam 10 (available: 0).",
            "❌ Out of stock",
        ),
        ("zh-hans", "⏳ 请稍候，正在为您下单…", "抱歉，Steam 10 库存不足（剩余 0）。", "❌ 已售罄"),
    ],
)
async def test_out_of_stock_after_the_answer_is_told_on_the_card_in_the_buyers_language(
    shop: Shop, lang: str, wait: str, refused: str, sold_out: str
) -> None:
    """What used to be the Buy tap's alert: the card is drawn again as it is now, the reason on top."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann", lang)
    shop.emu.user(OTHER, "Bob")
    card = await _card(shop, BUYER)
    await shop.buy_one(OTHER)  # the last key is reserved for someone else meanwhile
    before = len(shop.emu.messages(BUYER))
    qid = await shop.tap_data(BUYER, card, card.buttons[0]["callback_data"])
    told = await shop.emu.wait_for(BUYER, lambda s: refused in s.text, after=before)
    assert told.method == "editMessageText" and told.message["message_id"] == card.message["message_id"]
    assert told.text.startswith(refused) and sold_out in told.text
    assert len(told.buttons) == 1 and not told.buttons[0]["callback_data"].startswith("b:")  # only « Back
    assert shop.emu.callback_answers[qid] == {"text": wait, "show_alert": False}


@pytest.mark.parametrize(
    ("lang", "refused"),
    [
        ("en", "Purchase limit reached: 1 per 24 h (you may still buy 0)."),
        ("zh-hans", "已达限购：每 24 小时 1 件（还可购买 0 件）。"),
    ],
)
async def test_a_purchase_limit_after_the_answer_is_told_on_the_card_in_the_buyers_language(
    shop: Shop, lang: str, refused: str
) -> None:
    pid = await shop.product(keys=5, user_limit=1, user_limit_hours=24)
    shop.emu.user(BUYER, "Ann", lang)
    card = await _card(shop, BUYER)
    await shop.tap_data(BUYER, card, f"b:{pid}:1:0")
    await shop.emu.wait_for(BUYER, lambda s: s.method == "sendInvoice")  # one unpaid unit: the limit
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, card, f"b:{pid}:2:0")
    told = await shop.emu.wait_for(BUYER, lambda s: refused in s.text, after=before)
    assert told.method == "editMessageText" and told.button("Buy" if lang == "en" else "购买")
    assert await _pending(shop) == 1


# ---------------------------------------------------------------- an invoice that never reached the buyer


async def _audited_cancellations(shop: Shop) -> list[str]:
    q = select(t.audit_log.c.actor).where(t.audit_log.c.action == "order_cancelled")
    return [r[0] for r in await query(shop.services, q)]


async def _cancellations_done(shop: Shop) -> bool:
    return await _count(shop, t.orders, t.orders.c.status == "cancelled") == 1


async def test_an_invoice_refused_because_the_buyer_blocked_the_bot_frees_the_key_for_the_next_buyer(
    shop: Shop,
) -> None:
    """Telegram answers sendInvoice with 403: the reservation made for it is cancelled at once (audited
    with why), not held for the reservation's 15 minutes, and another buyer buys the key."""
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    card = await _card(shop, BUYER)
    shop.emu.fail_next("sendInvoice", 403)
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    assert await _eventually(lambda: _cancellations_done(shop)), "the reservation is still held"
    assert await shop.services.stock.available(pid) == 1
    assert await _audited_cancellations(shop) == ["system:invoice_not_sent:blocked"]
    invoice = await shop.buy_one(OTHER)
    assert invoice.method == "sendInvoice"
    assert (await shop.emu.pay(OTHER, invoice))["paid"]
    assert "KEY-" in (await shop.emu.wait_for(OTHER, lambda s: "delivered" in s.text)).text
    assert (await shop.services.users.ensure("telegram", str(BUYER))).bot_blocked


@pytest.mark.expect_errors  # a network failure is unexpected: logged and reported
async def test_an_invoice_whose_send_timed_out_frees_the_key_and_cannot_be_paid(shop: Shop) -> None:
    """The network gives up before Telegram answers: the invoice may have reached the buyer all the same.
    Its order is cancelled and the key goes to the next buyer; paying that invoice is refused at
    pre-checkout, so nobody pays for a key that is gone."""
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    shop.emu.user(OTHER, "Bob")
    card = await _card(shop, BUYER)
    shop.front.bot.session.timeout = 1
    shop.emu.stall_next("sendInvoice", 3.0)
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    late = await shop.emu.wait_for(BUYER, lambda s: s.method == "sendInvoice")
    assert await _eventually(lambda: _cancellations_done(shop)), "the reservation is still held"
    assert await shop.services.stock.available(pid) == 1
    assert await _audited_cancellations(shop) == ["system:invoice_not_sent:network"]
    shop.front.bot.session.timeout = 60
    invoice = await shop.buy_one(OTHER)
    assert (await shop.emu.pay(OTHER, invoice))["paid"]
    await shop.emu.wait_for(OTHER, lambda s: "delivered" in s.text)
    refused = await shop.emu.pay(BUYER, late)
    assert not refused["paid"] and [c.user_id for c in shop.emu.payments.values()] == [OTHER]


@pytest.mark.expect_errors  # Telegram failing the invoice is unexpected: logged and reported
async def test_an_unpaid_order_whose_invoice_fails_to_go_out_again_keeps_its_reservation(shop: Shop) -> None:
    """Buy again on an unpaid order sends its invoice again. If that fails, the order is not cancelled: the
    buyer holds its first invoice and may be paying it right now."""
    pid = await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    first = await shop.buy_one(BUYER)
    card = await _card(shop, BUYER)
    shop.emu.fail_next("sendInvoice", 500)
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    await shop.emu.wait_for(BUYER, lambda s: "went wrong" in s.text, after=before)
    assert await _pending(shop) == 1 and await shop.services.stock.available(pid) == 1
    assert (await shop.emu.pay(BUYER, first))["paid"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)


# ---------------------------------------------------------------- a tap answered too late (> 15 s)


async def test_a_buy_tap_whose_query_expired_still_sends_the_invoice_or_holds_no_stock(shop: Shop) -> None:
    """After a backlog (restart, slow database) a Buy tap older than ~15 s: answering it fails with
    'query is too old' (treated as harmless), and the handler stops right there: the order is made and
    the keys reserved, but no invoice is ever sent and the buyer sees nothing."""
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    shop.emu.callback_ttl = 0.0  # every answer from now on is "too old"
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    await asyncio.sleep(1.5)
    invoices = [s for s in shop.emu.messages(BUYER)[before:] if s.method == "sendInvoice"]
    assert invoices or (await _pending(shop) == 0 and await shop.services.stock.available(pid) == 1), (
        f"no invoice, {await _pending(shop)} pending order(s), "
        f"{await shop.services.stock.available(pid)} key(s) available"
    )


# ---------------------------------------------------------------- flood limits met by a quick buyer


async def test_sendinvoice_429_releases_the_reservation_and_alerts_nobody(shop: Shop) -> None:
    pid = await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    shop.emu.fail_next("sendInvoice", 429, retry_after=5)
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    await asyncio.sleep(1.5)
    assert await _pending(shop) == 0 and await shop.services.stock.available(pid) == 1, (
        "the reservation is left pending although no invoice was sent"
    )


async def test_an_invoice_that_meets_short_flood_limits_waits_them_out_and_keeps_its_reservation(
    shop: Shop,
) -> None:
    """A burst of invoices can bunch up and meet Telegram's 429 with a short retry_after: the invoice
    waits it out (a few times) instead of giving up and releasing the stock it was made for."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    shop.emu.fail_next("sendInvoice", 429, retry_after=1, times=2)
    await shop.tap_data(BUYER, card, card.button("Buy")["callback_data"])
    invoice = await shop.emu.wait_for(BUYER, lambda s: s.method == "sendInvoice", within=8.0)
    assert (await shop.emu.pay(BUYER, invoice))["paid"]
    assert "KEY-" in (await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)).text


# ---------------------------------------------------------------- double taps and hoarding


async def test_a_double_tap_on_buy_makes_one_order(shop: Shop) -> None:
    await shop.product(keys=5)
    shop.emu.user(BUYER, "Ann")
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    data = card.button("Buy")["callback_data"]
    await shop.tap_data(BUYER, card, data)
    await shop.tap_data(BUYER, card, data)
    await asyncio.sleep(2)
    assert await _pending(shop) == 1


async def test_one_buyer_cannot_hold_all_the_stock_in_unpaid_reservations(shop: Shop) -> None:
    """Forged/replayed Buy taps, slow enough for the throttle: every tap reserves max_qty more keys for
    15 minutes; nothing caps a buyer's pending orders, so the whole stock is held and others sold out."""
    pid = await shop.product(keys=10, max_qty=2)
    shop.emu.user(BUYER, "Mallory")
    shop.emu.user(OTHER, "Bob")
    menu = await shop.say(BUYER, "/start")
    for _ in range(5):
        await shop.tap_data(BUYER, menu, f"b:{pid}:2:0")
        await asyncio.sleep(1.1)  # under the throttle and Telegram's per-chat limit
    await asyncio.sleep(1)
    assert await shop.services.stock.available(pid) > 0, "one unpaying buyer holds every key"


async def test_a_newcomers_payment_finds_the_buyer_made_by_their_checkout_without_a_lookup(
    shop: Shop,
) -> None:
    """The first Buy creates the buyer's row in its transaction and the bot keeps it: the pre-checkout
    query and the payment that follow read no user (a flash sale's crowd is all newcomers)."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    users = shop.services.users
    real_find = users.find
    lookups: list[str] = []

    async def counted(channel: str, external_id: str) -> Any:
        lookups.append(external_id)
        return await real_find(channel, external_id)

    users.find = counted  # type: ignore[method-assign]
    assert (await shop.emu.pay(BUYER, invoice))["paid"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    assert lookups == []


@pytest.mark.parametrize("newcomer", [True, False])
async def test_a_language_picked_while_a_buy_is_on_its_way_is_the_one_the_replies_after_it_speak(
    shop: Shop, newcomer: bool
) -> None:
    """The Buy tap's checkout read the buyer before they picked 简体中文; what it read must not replace
    the choice in the bot's memory of them."""
    await shop.product(keys=2)
    shop.emu.user(BUYER, "Ann")
    if not newcomer:
        await shop.services.users.ensure("telegram", str(BUYER))
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    checkout = shop.services.checkout.checkout_or_reuse

    async def meanwhile_the_buyer_picks_a_language(*args: Any, **kwargs: Any) -> Any:
        done = await checkout(*args, **kwargs)
        qid = await shop.tap_data(BUYER, listing, LanguageCb(code="zh_CN").pack())
        await shop.answer_to(qid)
        return done

    shop.services.checkout.checkout_or_reuse = meanwhile_the_buyer_picks_a_language  # type: ignore[method-assign]
    await shop.tap(BUYER, card, "Buy")
    await shop.emu.wait_for(BUYER, lambda s: s.method == "sendInvoice")
    stored = await shop.services.users.find("telegram", str(BUYER))
    assert stored is not None and (stored.language, stored.language_chosen) == ("zh_CN", True)
    listing_again = await shop.say(BUYER, "/catalog")
    assert "全部商品" in listing_again.text
