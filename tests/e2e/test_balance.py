"""Paying with the shop balance through the real bot, in English and Chinese: a distributor whose commission
was earned (a friend's purchase through their invite link) and settled (the clock shifted past the holding
period) gets, under the invoice, the offer to pay from the balance; confirming pays, the offer message says
so and the keys come as after a Stars payment, and the invoice is then refused. A balance short of the
price offers nothing. Forged, someone else's and repeated taps are refused and change nothing."""

from __future__ import annotations

import asyncio
import re

import pytest

from core.models import STARS
from sandbox.telegram import Sent
from tests.e2e.conftest import ADMIN, Shop

DIST, FRIEND, OTHER = 801, 802, 803
GIFT_STARS = 500  # the friend's purchase: 10 % of it, 50 Stars, is the distributor's commission
EARNED = 50

LANGS = {
    "en": {
        "offer": "from your shop balance",
        "button": f"Pay with balance ({EARNED} ⭐ available)",
        "ask": "Pay 30 ⭐ for order",
        "cancel": "Cancel",
        "confirm": "Confirm",
        "paid": "✅ Paid 30 ⭐ from your shop balance for order",
        "delivered": "delivered",
        "state": "This order cannot do that now (delivered).",
        "other": "belongs to another buyer",
        "unknown": "Order not found.",
        "refunded": "was refunded: this order had already been paid",
        "returned": "is back in your shop balance: the shop refunded the order.",
        "stale": "This button is out of date",
    },
    "zh-hans": {
        "offer": "也可以用商店余额支付",
        "button": f"余额支付（可用 {EARNED} ⭐）",
        "ask": "用商店余额支付订单",
        "cancel": "取消",
        "confirm": "确认支付",
        "paid": "✅ 已用商店余额支付订单",
        "delivered": "已发货",
        "state": "订单当前状态不支持该操作（已发货）。",
        "other": "属于其他买家",
        "unknown": "未找到该订单。",
        "refunded": "已退款：该订单已支付过",
        "returned": "已退回你的商店余额：",
        "stale": "按钮已失效",
    },
}


@pytest.fixture(params=list(LANGS))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _balance_buttons(sent: Sent) -> list[dict[str, str]]:
    return [b for b in sent.buttons if str(b.get("callback_data", "")).startswith("pb:")]


def _edits(shop: Shop) -> list[dict[str, object]]:
    return [p for m, p in shop.emu.calls if m == "editMessageText"]


async def _next_edit(shop: Shop, seen: int) -> dict[str, object]:
    """The first edit the bot asked for after the first ``seen`` (made or refused as unchanged)."""
    for _ in range(250):
        edits = _edits(shop)
        if len(edits) > seen:
            return edits[seen]
        await asyncio.sleep(0.02)
    raise AssertionError("the bot never edited the message")


async def _buy(shop: Shop, user: int, name: str) -> Sent:
    """/catalog → the product → its Stars Buy button: the invoice."""
    listing = await shop.say(user, "/catalog")
    card = await shop.tap(user, listing, name)
    buy = next(b for b in card.buttons if b["callback_data"].startswith("b:"))
    before = len(shop.emu.messages(user))
    await shop.emu.tap(user, card, buy["callback_data"])
    return await shop.emu.wait_for(user, lambda s: s.method == "sendInvoice", after=before)


async def _earn(shop: Shop, lang: str) -> int:
    """The distributor's invite link brings a friend who buys the gift; the commission is settled. Returns
    the distributor's shop user id."""
    for who, name in ((DIST, "Dora"), (FRIEND, "Finn"), (OTHER, "Otto")):
        shop.emu.user(who, name, lang)
    await shop.product(keys=2, name="Gift", price_stars=GIFT_STARS)
    invite = await shop.say(DIST, "/invite")
    payload = re.search(r"\?start=([A-Za-z0-9_-]+)", invite.text)
    assert payload is not None
    await shop.say(FRIEND, f"/start {payload.group(1)}")
    invoice = await _buy(shop, FRIEND, "Gift")
    assert (await shop.emu.pay(FRIEND, invoice))["paid"]
    await shop.emu.wait_for(FRIEND, lambda s: "KEY-" in s.text)
    shop.clock.advance(days=7, minutes=1)
    assert await shop.services.ledger.settle() == 1
    dist = await shop.services.users.find("telegram", str(DIST))
    assert dist is not None
    assert await shop.services.balance.available(dist.id, STARS) == EARNED
    assert await shop.services.ledger.check() == []
    return dist.id


async def test_a_distributor_pays_with_balance_and_receives_the_keys(shop: Shop, lang: str) -> None:
    words = LANGS[lang]
    dist = await _earn(shop, lang)
    await shop.product(keys=2, name="Small", price_stars=30)
    before = len(shop.emu.messages(DIST))
    invoice = await _buy(shop, DIST, "Small")
    ref = invoice.message["_payload"]
    offer = await shop.emu.wait_for(DIST, lambda s: bool(_balance_buttons(s)), after=before)
    assert words["offer"] in offer.text and ref in offer.text
    assert _balance_buttons(offer)[0]["text"].endswith(words["button"])

    ask = await shop.tap(DIST, offer, words["button"])
    assert ask.method == "editMessageText" and ask.message["message_id"] == offer.message["message_id"]
    assert words["ask"] in ask.text and ref in ask.text
    back = await shop.tap(DIST, ask, words["cancel"])  # changed their mind: the offer again
    assert back.text == offer.text and back.message["message_id"] == offer.message["message_id"]
    ask = await shop.tap(DIST, back, words["button"])
    assert await shop.services.balance.available(dist, STARS) == EARNED  # nothing paid by asking

    done = await shop.tap(DIST, ask, words["confirm"])
    assert done.method == "editMessageText" and done.message["message_id"] == offer.message["message_id"]
    assert words["paid"] in done.text and ref in done.text and not done.buttons
    keys = await shop.emu.wait_for(DIST, lambda s: "KEY-" in s.text)
    assert words["delivered"] in keys.text and ref in keys.text
    assert await shop.services.balance.available(dist, STARS) == EARNED - 30
    assert await shop.services.ledger.check() == []

    # Paid once: the Stars invoice is refused at pre-checkout; a repeated Confirm (a double tap) gets the
    # same answer, paid, and pays nothing more; the offer's button, tapped again, is refused.
    assert (await shop.emu.pay(DIST, invoice))["paid"] is False
    edits = len(_edits(shop))
    qid = await shop.tap_data(DIST, ask, ask.button(words["confirm"])["callback_data"])
    assert not (await shop.answer_to(qid)).get("show_alert")
    again = await _next_edit(shop, edits)  # the last thing the tap's handler does
    assert (
        words["paid"] in str(again["text"]) and int(str(again["message_id"])) == offer.message["message_id"]
    )
    assert await shop.services.balance.available(dist, STARS) == EARNED - 30
    # Telegram charged the invoice all the same (a client that skipped pre-checkout): refunded in Stars.
    charge = shop.emu.charge(DIST, STARS, 30, ref).charge_id
    await shop.emu.deliver_payment(DIST, charge)
    await shop.emu.wait_for(DIST, lambda s: words["refunded"] in s.text and ref in s.text)
    assert shop.emu.payments[charge].refunded
    assert await shop.services.balance.available(dist, STARS) == EARNED - 30
    assert len([s for s in shop.emu.messages(DIST) if "KEY-" in s.text]) == 1
    assert (await shop.services.orders.get(ref)).status.value == "delivered"
    assert await shop.services.ledger.check() == []

    # The shop refunds the order: the money is back in the balance at once, and the buyer is told.
    await shop.services.refunds.request_refund(ref, actor=f"telegram:{ADMIN}")
    back_in = await shop.emu.wait_for(DIST, lambda s: words["returned"] in s.text)
    assert ref in back_in.text and "30 ⭐" in back_in.text
    assert await shop.services.balance.available(dist, STARS) == EARNED
    assert (await shop.services.orders.get(ref)).status.value == "refunded"
    assert await shop.services.ledger.check() == []


async def test_a_balance_short_of_the_price_offers_nothing_and_stars_still_pay(shop: Shop, lang: str) -> None:
    dist = await _earn(shop, lang)
    await shop.product(keys=2, name="Dear", price_stars=EARNED + 1)
    before = len(shop.emu.messages(DIST))
    invoice = await _buy(shop, DIST, "Dear")
    assert (await shop.emu.pay(DIST, invoice))["paid"]
    await shop.emu.wait_for(DIST, lambda s: "KEY-" in s.text, after=before)
    # The offer would have come right after the invoice, long before the payment and its delivery.
    assert not [s for s in shop.emu.messages(DIST)[before:] if _balance_buttons(s)]
    assert await shop.services.balance.available(dist, STARS) == EARNED
    # The friend has no balance at all: no offer either.
    before = len(shop.emu.messages(FRIEND))
    invoice = await _buy(shop, FRIEND, "Dear")
    assert (await shop.emu.pay(FRIEND, invoice))["paid"]
    await shop.emu.wait_for(FRIEND, lambda s: "KEY-" in s.text, after=before)
    assert not [s for s in shop.emu.messages(FRIEND)[before:] if _balance_buttons(s)]


async def test_forged_and_someone_elses_balance_taps_are_refused_and_change_nothing(
    shop: Shop, lang: str
) -> None:
    words = LANGS[lang]
    dist = await _earn(shop, lang)
    await shop.product(keys=2, name="Small", price_stars=30)
    invoice = await _buy(shop, DIST, "Small")
    ref = invoice.message["_payload"]
    # Finn (a buyer) and Otto (who never bought: no orders at all) tap the distributor's order on their own
    # messages; anyone taps forged data.
    finn = await shop.say(FRIEND, "/start")
    otto = await shop.say(OTHER, "/start")
    edits = len(_edits(shop))
    for who, own, data, told in (
        (FRIEND, finn, f"pb:{ref}:go", words["other"]),
        (FRIEND, finn, f"pb:{ref}:ask", words["other"]),
        (FRIEND, finn, f"pb:{ref}:back", words["other"]),
        (OTHER, otto, f"pb:{ref}:go", words["unknown"]),
        (OTHER, otto, "pb:bad ref!:go", words["stale"]),  # forged: refused by the filter
        (FRIEND, finn, f"pb:{ref}:steal", words["stale"]),
        (FRIEND, finn, f"pb:{'A' * 40}:go", words["stale"]),  # oversized reference
    ):
        qid = await shop.tap_data(who, own, data)
        answer = await shop.answer_to(qid)
        assert told in str(answer["text"]) and answer.get("show_alert"), (data, answer)
    assert (await shop.services.orders.get(ref)).status.value == "pending"
    assert await shop.services.balance.available(dist, STARS) == EARNED
    assert len(_edits(shop)) == edits  # nobody's message was touched
    assert await shop.services.ledger.check() == []
