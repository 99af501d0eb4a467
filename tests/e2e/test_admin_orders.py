"""Orders and buyers in the back office, end to end through the emulator, in English and Simplified
Chinese: /order with each of its buttons, /orders_pending, /user, /ban (and the banned buyer at checkout),
/unban; "mark paid" with commission or, by default, without; an operator outside their scope finds no
such order, forged buttons included.

The owners here are OWNER only (not the fixture's ADMIN): a paid manual order alerts the owners, and the
fixture fails a test in which ADMIN got a message."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from core import tables
from core.models import DeliveryKind, OrderStatus
from core.roles import Grant, Role
from tests.conftest import sql
from tests.e2e.conftest import Shop

OWNER, OPERATOR, BUYER, OTHER_BUYER = 900_002, 900_010, 601, 602

T = {
    "en": {
        "lang": "en",
        "order": "Order",
        "payments": "Payments",
        "trail": "Audit trail",
        "resend": "Resend",
        "keys_delivered": "keys delivered",
        "resent": "delivery resent",
        "refund": "Refund",
        "refund_sure": "Yes, refund",
        "cancel": "Cancel order",
        "cancel_sure": "Yes, cancel",
        "paid": "Mark paid",
        "paid_sure": "Yes, record",
        "paid_commission": "with commission to referrers",
        "no_commission": "earn no commission on it unless",
        "with_commission": ", with commission",
        "deliver": "Deliver by hand",
        "delivered": "delivered",
        "refunding": "refund in progress",
        "cancelled": "cancelled",
        "ask_amount": "Send the amount",
        "mismatch": "nothing was recorded",
        "pending_title": "Needs you",
        "orders_button": "Orders",
        "not_found": "Order not found",
        "banned": "is banned",
        "buyer_banned": "Banned",
        "phone_none": "Phone: not set",
        "unbanned": "may buy again",
        "ban_usage": "the reason is required",
        "ban_owner": "owners cannot be banned",
        "username": "No buyer has written to the shop as @nobody_here",
        "checkout_refused": "cannot place orders",
    },
    "zh": {
        "lang": "zh-hans",
        "order": "订单",
        "payments": "支付记录",
        "trail": "操作日志",
        "resend": "重新发送",
        "keys_delivered": "卡密已发货",
        "resent": "重新发货",
        "refund": "退款",
        "refund_sure": "确认退款",
        "cancel": "取消订单",
        "cancel_sure": "确认取消",
        "paid": "标记已支付",
        "paid_sure": "确认记录",
        "paid_commission": "并给推广员计佣金",
        "no_commission": "推广员不会因此获得佣金",
        "with_commission": "，计佣金",
        "deliver": "人工发货",
        "delivered": "已发货",
        "refunding": "退款中",
        "cancelled": "已取消",
        "ask_amount": "收到的金额",
        "mismatch": "未做记录",
        "pending_title": "待处理",
        "orders_button": "订单",
        "not_found": "未找到该订单",
        "banned": "已拉黑",
        "buyer_banned": "已拉黑",
        "phone_none": "手机号：未填写",
        "unbanned": "已移出黑名单",
        "ban_usage": "必须填写原因",
        "ban_owner": "店主不能被拉黑",
        "username": "没有以 @nobody_here 使用过本店的买家",
        "checkout_refused": "无法在本店下单",
    },
}
LANGS = pytest.mark.parametrize("lang", ["en", "zh"])


async def _setup(shop: Shop, lang: str) -> tuple[int, int]:
    shop.emu.user(OWNER, "Owen", T[lang]["lang"])
    shop.emu.user(OPERATOR, "Olga", T[lang]["lang"])
    shop.emu.user(BUYER, "Ann", username="Ann_Buys")
    shop.emu.user(OTHER_BUYER, "Bo", T[lang]["lang"])
    await shop.rebuild(admin_ids=[OWNER], brisk=True)  # not a test of the pace
    theirs = await shop.product(keys=3, name="Netflix 1M")
    other = await shop.product(keys=5, name="Steam 10")
    await shop.say(OWNER, f"/staff operator {OPERATOR} p:{theirs}")
    return theirs, other


async def _bought(shop: Shop, product: str, *, pay: bool = True) -> tuple[str, str | None]:
    """BUYER buys one of ``product`` through the emulator; the order's ref and the Stars charge id."""
    before = len(shop.emu.messages(BUYER))
    invoice = await shop.buy_one(BUYER, product)
    ref = str(invoice.message["_payload"])
    if not pay:
        return ref, None
    paid = await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: ref in s.text and "✅" in s.text, after=before)
    return ref, str(paid["charge_id"])


async def _status(shop: Shop, ref: str) -> OrderStatus:
    return (await shop.services.orders.get(ref)).status


async def _eventually(shop: Shop, ref: str, status: OrderStatus) -> None:
    for _ in range(100):
        if await _status(shop, ref) is status:
            return
        await asyncio.sleep(0.05)
    assert await _status(shop, ref) is status


@LANGS
async def test_an_owner_opens_an_order_resends_it_and_refunds_it(shop: Shop, lang: str) -> None:
    t = T[lang]
    await _setup(shop, lang)
    ref, charge = await _bought(shop, "Steam")
    assert charge is not None
    screen = await shop.say(OWNER, f"/order {ref}")
    assert ref in screen.text and t["delivered"] in screen.text
    assert t["payments"] in screen.text and "telegram" in screen.text and t["trail"] in screen.text
    assert t["keys_delivered"] in screen.text and "keys_delivered" not in screen.text
    assert "••••" in screen.text and "KEY-" not in screen.text  # a short key is masked entirely
    labels = [b["text"] for b in screen.buttons]
    assert any(t["resend"] in x for x in labels) and any(t["refund"] in x for x in labels)
    assert not any(t["paid"] in x for x in labels)

    before = len([s for s in shop.emu.messages(BUYER) if ref in s.text])
    resent = await shop.tap(OWNER, screen, t["resend"])
    assert t["resent"] in resent.text
    for _ in range(60):
        if len([s for s in shop.emu.messages(BUYER) if ref in s.text]) > before:
            break
        await asyncio.sleep(0.05)
    assert len([s for s in shop.emu.messages(BUYER) if ref in s.text]) > before

    ask = await shop.tap(OWNER, resent, t["refund"])
    assert ref in ask.text and await _status(shop, ref) is OrderStatus.DELIVERED  # asked first
    sure = ask.button(t["refund_sure"])["callback_data"]
    done = await shop.tap(OWNER, ask, t["refund_sure"])
    assert ref in done.text
    await _eventually(shop, ref, OrderStatus.REFUNDED)
    assert shop.emu.payments[charge].refunded
    assert any("↩️" in s.text and ref in s.text for s in shop.emu.messages(BUYER))
    # a second tap on the confirmation, now stale: refused, nothing more refunded
    qid = await shop.tap_data(OWNER, ask, sure)
    assert (await shop.answer_to(qid))["show_alert"]
    listing = await shop.say(OWNER, f"/order {BUYER}")
    assert ref in listing.text
    again = await shop.tap(OWNER, listing, ref)
    assert ref in again.text and t["payments"] in again.text


@LANGS
async def test_an_owner_cancels_a_pending_order_and_marks_another_paid(shop: Shop, lang: str) -> None:
    t = T[lang]
    await _setup(shop, lang)
    to_cancel, _ = await _bought(shop, "Netflix", pay=False)
    to_mark, _ = await _bought(shop, "Steam", pay=False)
    screen = await shop.say(OWNER, f"/order {to_cancel}")
    ask = await shop.tap(OWNER, screen, t["cancel"])
    assert await _status(shop, to_cancel) is OrderStatus.PENDING
    done = await shop.tap(OWNER, ask, t["cancel_sure"])
    assert t["cancelled"] in done.text and await _status(shop, to_cancel) is OrderStatus.CANCELLED

    screen = await shop.say(OWNER, f"/order {to_mark}")
    prompt = await shop.tap(OWNER, screen, t["paid"])
    assert t["ask_amount"] in prompt.text and "50 ⭐" in prompt.text
    assert t["ask_amount"] in (await shop.say(OWNER, "nonsense")).text
    assert t["mismatch"] in (await shop.say(OWNER, "49 <b>cash</b>")).text
    confirm = await shop.say(OWNER, "50 cash at the <b>counter</b> & co")
    assert "<b>counter</b> & co" in confirm.text  # shown as typed, not as markup
    assert await _status(shop, to_mark) is OrderStatus.PENDING  # asked first
    sure = confirm.button(t["paid_sure"])["callback_data"]
    done = await shop.tap(OWNER, confirm, t["paid_sure"])
    assert t["delivered"] in done.text and "manual" in done.text
    assert await _status(shop, to_mark) is OrderStatus.DELIVERED
    await shop.emu.wait_for(BUYER, lambda s: to_mark in s.text and "✅" in s.text)
    # the same confirmation replayed records nothing more
    qid = await shop.tap_data(OWNER, confirm, sure)
    await shop.answer_to(qid)
    detail = await shop.services.order_desk.detail(to_mark, grant=Grant(Role.OWNER))
    assert [p.provider for p in detail.payments] == ["manual"]


@LANGS
async def test_an_owner_marks_a_referred_buyers_order_paid_with_commission_or_by_default_without(
    shop: Shop, lang: str
) -> None:
    t = T[lang]
    await _setup(shop, lang)
    plain, _ = await _bought(shop, "Steam", pay=False)
    chosen, _ = await _bought(shop, "Netflix", pay=False)
    buyer = await shop.services.users.find("telegram", str(BUYER))
    referrer = await shop.services.users.ensure("telegram", str(OTHER_BUYER), language="en")
    assert buyer is not None
    await sql(
        shop.services,
        update(tables.users).where(tables.users.c.id == buyer.id).values(referrer_id=referrer.id),
    )
    for ref, button in ((plain, t["paid_sure"]), (chosen, t["paid_commission"])):
        screen = await shop.say(OWNER, f"/order {ref}")
        await shop.tap(OWNER, screen, t["paid"])
        confirm = await shop.say(OWNER, "50 cash")
        assert t["no_commission"] in confirm.text and await _status(shop, ref) is OrderStatus.PENDING
        done = await shop.tap(OWNER, confirm, button)
        assert t["delivered"] in done.text
        assert (t["with_commission"] in done.text) is (ref == chosen)
    ledger = shop.services.ledger
    plain_order, chosen_order = [await shop.services.orders.get(r) for r in (plain, chosen)]
    assert await ledger.commissions(plain_order.id) == []
    commissions = await ledger.commissions(chosen_order.id)
    assert [(c.level, c.beneficiary_id, c.amount, c.currency) for c in commissions] == [
        (1, referrer.id, 5, "XTR")
    ]
    assert await ledger.check() == []


@LANGS
async def test_a_manual_order_waits_in_pending_until_an_admin_delivers_it_by_hand(
    shop: Shop, lang: str
) -> None:
    t = T[lang]
    await _setup(shop, lang)
    await shop.product(name="Gift card", delivery_kind=DeliveryKind.MANUAL)
    before = len(shop.emu.messages(BUYER))
    invoice = await shop.buy_one(BUYER, "Gift")
    ref = str(invoice.message["_payload"])
    await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: ref in s.text, after=before)
    await shop.emu.wait_for(OWNER, lambda s: "manual order" in s.text)  # the owners' notice comes first
    pending = await shop.say(OWNER, "/orders_pending")
    assert t["pending_title"] in pending.text and ref in pending.text
    screen = await shop.tap(OWNER, pending, ref)
    prompt = await shop.tap(OWNER, screen, t["deliver"])
    assert ref in prompt.text
    before = len(shop.emu.messages(BUYER))
    reply = await shop.say(OWNER, "GIFT-CODE <b>7788</b>")
    assert ref in reply.text and t["delivered"] in reply.text
    got = await shop.emu.wait_for(BUYER, lambda s: "GIFT-CODE <b>7788</b>" in s.text, after=before)
    assert ref in got.text
    assert await _status(shop, ref) is OrderStatus.DELIVERED
    menu = await shop.say(OWNER, "/admin")
    empty = await shop.tap(OWNER, menu, t["orders_button"])
    assert ref not in empty.text


@LANGS
async def test_an_operator_outside_the_scope_finds_no_such_order_and_cannot_act_on_it(
    shop: Shop, lang: str
) -> None:
    t = T[lang]
    await _setup(shop, lang)
    other_ref, _ = await _bought(shop, "Steam")
    mine, _ = await _bought(shop, "Netflix", pay=False)
    nothing = (await shop.say(OPERATOR, "/order NOSUCHORDER")).text
    assert (await shop.say(OPERATOR, f"/order {other_ref}")).text == nothing
    assert other_ref not in (await shop.say(OPERATOR, f"/order {BUYER}")).text
    assert other_ref not in (await shop.say(OPERATOR, "/orders_pending")).text
    screen = await shop.say(OPERATOR, f"/order {mine}")
    assert mine in screen.text
    labels = " ".join(b["text"] for b in screen.buttons)
    assert t["cancel"] in labels and t["paid"] not in labels and t["refund"] not in labels
    for data in (
        f"aov:{other_ref}",
        f"aoa:{other_ref}:cancel:1",
        f"aoa:{other_ref}:refund:1",
        f"aoa:{other_ref}:resend:0",
        f"aoi:{other_ref}:paid",
        f"aoi:{other_ref}:paid_commission",
        f"aoa:{other_ref}:paid:0",
    ):
        answer = await shop.answer_to(await shop.tap_data(OPERATOR, screen, data))
        assert t["not_found"] in str(answer["text"]), data
    answer = await shop.answer_to(await shop.tap_data(OPERATOR, screen, f"aoa:{mine}:paid:0"))
    assert "not" in str(answer["text"]) or "权限" in str(answer["text"])
    assert await _status(shop, other_ref) is OrderStatus.DELIVERED
    assert await _status(shop, mine) is OrderStatus.PENDING


@LANGS
async def test_an_owner_looks_a_buyer_up_bans_and_unbans_them(shop: Shop, lang: str) -> None:
    t = T[lang]
    await _setup(shop, lang)
    ref, _ = await _bought(shop, "Steam")
    profile = await shop.say(OWNER, f"/user {BUYER}")
    assert str(BUYER) in profile.text and t["phone_none"] in profile.text and ref in profile.text
    assert "50 ⭐" in profile.text
    assert t["username"] in (await shop.say(OWNER, "/user @nobody_here")).text
    # the shop knows the buyer's @username from their own updates (any case)
    by_name = await shop.say(OWNER, "/user @ANN_buys")
    assert str(BUYER) in by_name.text and "@ann_buys" in by_name.text and ref in by_name.text
    assert ref in (await shop.say(OWNER, "/order @ann_buys")).text
    assert t["ban_usage"] in (await shop.say(OWNER, f"/ban {BUYER}")).text
    assert t["ban_owner"] in (await shop.say(OWNER, f"/ban {OWNER} testing")).text
    assert t["banned"] in (await shop.say(OWNER, "/ban @ann_buys chargebacks <b>x</b>")).text
    assert t["buyer_banned"] in (await shop.say(OWNER, f"/user {BUYER}")).text

    # the buyer is told politely at checkout, and still sees their order
    listing = await shop.say(BUYER, "/catalog")
    card = await shop.tap(BUYER, listing, "Steam")
    buy = next(b["callback_data"] for b in card.buttons if b.get("callback_data", "").startswith("b:"))
    before = len(shop.emu.messages(BUYER))
    await shop.tap_data(BUYER, card, buy)
    await shop.emu.wait_for(BUYER, lambda s: "cannot place orders" in s.text, after=before)
    assert ref in (await shop.say(BUYER, "/orders")).text

    assert t["unbanned"] in (await shop.say(OWNER, f"/unban {BUYER} sorted out")).text
    invoice = await shop.buy_one(BUYER, "Steam")
    assert invoice.message.get("invoice")


async def test_a_chinese_buyer_who_is_banned_is_told_in_chinese(shop: Shop) -> None:
    await _setup(shop, "zh")
    await shop.say(OWNER, f"/ban {OTHER_BUYER} spam")
    listing = await shop.say(OTHER_BUYER, "/catalog")
    card = await shop.tap(OTHER_BUYER, listing, "Steam")
    buy = next(b["callback_data"] for b in card.buttons if b.get("callback_data", "").startswith("b:"))
    before = len(shop.emu.messages(OTHER_BUYER))
    await shop.tap_data(OTHER_BUYER, card, buy)
    refused = T["zh"]["checkout_refused"]
    await shop.emu.wait_for(OTHER_BUYER, lambda s: refused in s.text, after=before)


async def test_hostile_order_and_buyer_input_gets_a_clear_answer_and_changes_nothing(shop: Shop) -> None:
    await _setup(shop, "en")
    ref, _ = await _bought(shop, "Steam")
    for text, expected in [
        ("/order", "Find an order"),
        ("/order <b>x</b>", "not valid"),
        ("/order 99999999999999999999999999", "not found"),
        ("/order i:99999", "No orders"),
        ("/order @someone", "No buyer has written to the shop as @someone"),
        ("/order @bad-name!", "not valid"),
        ("/user 424242", "No buyer 424242"),
        ("/user 99999999999999999999", "/user TELEGRAM_ID"),
        ("/ban abc spam", "Usage"),
        ("/unban 424242 why", "No buyer"),
        (f"/ban {OPERATOR} no", "on the staff"),
    ]:
        reply = (await shop.say(OWNER, text)).text
        assert expected.lower() in reply.lower(), (text, reply)
    screen = await shop.say(OWNER, f"/order {ref}")
    for data in (
        "aoa:" + ref + ":nuke:1",
        "aov:" + "x" * 40,
        "aoa:" + ref + ":cancel:1",
        "aoi:" + ref + ":paid",
    ):
        answer = await shop.answer_to(await shop.tap_data(OWNER, screen, data))
        assert answer["show_alert"], data
    assert await _status(shop, ref) is OrderStatus.DELIVERED
    user = await shop.services.buyers.profile("telegram", str(BUYER))
    assert not user.user.blocklisted
