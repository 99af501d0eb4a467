"""A refund made by hand, end to end through the emulator, in English and Simplified Chinese: an owner's
"mark paid" loses the race against the buyer's Stars payment, so the manual charge is owed back and the order
waits in /orders_pending; the owner returns the money outside Telegram, taps "Refunded by hand", types the
transfer's reference, confirms; the buyer is told, the order leaves /orders_pending, and a stale second
confirmation changes nothing. An operator never sees the button, and beyond their scope it is "not found".

The owner here is OWNER only (not the fixture's ADMIN): the manual charge owed back alerts the owners, and the
fixture fails a test in which ADMIN got a message."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core import tables as t
from core.context import UnitOfWork
from core.models import OrderStatus
from core.roles import Grant, Role
from tests.e2e.conftest import Shop

OWNER, OPERATOR, BUYER = 900_002, 900_010, 601

T = {
    "en": {
        "lang": "en",
        "paid": "Mark paid",
        "paid_sure": "Yes, record",
        "byhand": "Refunded by hand",
        "byhand_sure": "Yes, it was refunded",
        "ask": "Send a note",
        "confirm": "was refunded by hand?",
        "done": "Refund recorded",
        "buyer_told": "was refunded",
        "not_found": "Order not found",
        "not_role": "not part of your role",
    },
    "zh": {
        "lang": "zh-hans",
        "paid": "标记已支付",
        "paid_sure": "确认记录",
        "byhand": "已手动退款",
        "byhand_sure": "确认已退款",
        "ask": "请发送一条备注",
        "confirm": "已手动退款？",
        "done": "退款已记录",
        "buyer_told": "was refunded",
        "not_found": "未找到该订单",
        "not_role": "不在您的角色权限",
    },
}


async def _setup(shop: Shop, lang: str) -> tuple[int, int]:
    shop.emu.user(OWNER, "Owen", T[lang]["lang"])
    shop.emu.user(OPERATOR, "Olga", T[lang]["lang"])
    shop.emu.user(BUYER, "Ann")  # buys through English buttons; the staff read their own language
    await shop.rebuild(admin_ids=[OWNER])
    theirs = await shop.product(keys=3, name="Netflix 1M")
    other = await shop.product(keys=5, name="Steam 10")
    await shop.say(OWNER, f"/staff operator {OPERATOR} p:{theirs}")
    return theirs, other


async def _hand_refunds(shop: Shop) -> list[dict[str, object]]:
    def read(uow: UnitOfWork) -> list[dict[str, object]]:
        a = t.audit_log
        q = select(a.c.actor, a.c.detail).where(a.c.action == "payment_refunded_by_hand")
        return [{"actor": r[0], **r[1]} for r in uow.repo.conn.execute(q).all()]

    return await shop.services.ctx.read(read)


async def _owed_by_hand(shop: Shop, lang: str, product: str) -> str:
    """The buyer orders ``product``; the owner's "mark paid" loses to the buyer's Stars payment: the manual
    charge is owed back by hand. Returns the order's ref."""
    tr = T[lang]
    invoice = await shop.buy_one(BUYER, product)
    ref = str(invoice.message["_payload"])
    screen = await shop.say(OWNER, f"/order {ref}")
    await shop.tap(OWNER, screen, tr["paid"])
    confirm = await shop.say(OWNER, "50 cash")
    before = len(shop.emu.messages(BUYER))
    await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: ref in s.text and "✅" in s.text, after=before)
    await shop.tap(OWNER, confirm, tr["paid_sure"])
    assert (await shop.services.orders.get(ref)).status is OrderStatus.DELIVERED
    detail = await shop.services.order_desk.detail(ref, grant=Grant(Role.OWNER))
    assert sorted((p.provider, str(p.status)) for p in detail.payments) == [
        ("manual", "refund_due"),
        ("telegram", "accepted"),
    ]
    await _settled(shop)
    return ref


async def _settled(shop: Shop) -> None:
    """The outbox has handled the manual charge owed back (an alert to the owners, which Telegram's flood
    limit may drop), and the owner's chat has room again: the next message to the owner is an answer."""
    for _ in range(100):
        if not await shop.services.ctx.read(lambda uow: uow.repo.outbox.pending()):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.1)


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_an_owner_records_a_refund_made_by_hand_and_the_order_leaves_pending(
    shop: Shop, lang: str
) -> None:
    tr = T[lang]
    await _setup(shop, lang)
    ref = await _owed_by_hand(shop, lang, "Steam")
    pending = await shop.say(OWNER, "/orders_pending")
    assert ref in pending.text
    screen = await shop.tap(OWNER, pending, ref)
    assert any(tr["byhand"] in b["text"] for b in screen.buttons)

    ask = await shop.tap(OWNER, screen, tr["byhand"])
    assert tr["ask"] in ask.text and ref in ask.text and "50 ⭐" in ask.text
    confirm = await shop.say(OWNER, "wire <b>TX-77</b> & co")
    assert tr["confirm"] in confirm.text and "<b>TX-77</b> & co" in confirm.text  # as typed, not markup
    assert await _hand_refunds(shop) == []  # asked first
    sure = confirm.button(tr["byhand_sure"])["callback_data"]
    before = len(shop.emu.messages(BUYER))
    qid = await shop.tap_data(OWNER, confirm, sure)
    assert tr["done"] in str((await shop.answer_to(qid))["text"])
    told = await shop.emu.wait_for(
        BUYER, lambda s: tr["buyer_told"] in s.text and ref in s.text, after=before
    )
    assert "50 ⭐" in told.text
    recorded = await _hand_refunds(shop)
    assert len(recorded) == 1
    assert recorded[0]["actor"] == f"telegram:{OWNER}" and recorded[0]["note"] == "wire <b>TX-77</b> & co"
    assert recorded[0]["charge_id"] == f"manual:{ref}"
    assert (await shop.services.orders.get(ref)).status is OrderStatus.DELIVERED  # the Stars payment stands
    assert ref not in (await shop.say(OWNER, "/orders_pending")).text
    again = await shop.say(OWNER, f"/order {ref}")
    assert not any(tr["byhand"] in b["text"] for b in again.buttons)

    # the same confirmation tapped again, now stale: refused, nothing more recorded, the buyer not told twice
    await asyncio.sleep(0.5)
    qid = await shop.tap_data(OWNER, confirm, sure)
    assert (await shop.answer_to(qid))["show_alert"]
    await asyncio.sleep(0.3)
    assert len(await _hand_refunds(shop)) == 1
    assert len([s for s in shop.emu.messages(BUYER) if tr["buyer_told"] in s.text]) == 1


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_an_operator_never_records_a_refund_by_hand(shop: Shop, lang: str) -> None:
    tr = T[lang]
    await _setup(shop, lang)
    other_ref = await _owed_by_hand(shop, lang, "Steam")
    mine = await _owed_by_hand(shop, lang, "Netflix")
    screen = await shop.say(OPERATOR, f"/order {mine}")
    assert mine in screen.text and not any(tr["byhand"] in b["text"] for b in screen.buttons)
    for data in (f"aoa:{other_ref}:byhand:0", f"aoa:{other_ref}:byhand:1"):
        await asyncio.sleep(0.5)
        answer = await shop.answer_to(await shop.tap_data(OPERATOR, screen, data))
        assert tr["not_found"] in str(answer["text"]), data
    for data in (f"aoa:{mine}:byhand:0", f"aoa:{mine}:byhand:1"):
        await asyncio.sleep(0.5)
        answer = await shop.answer_to(await shop.tap_data(OPERATOR, screen, data))
        assert tr["not_role"] in str(answer["text"]), data
    assert await _hand_refunds(shop) == []
    pending = await shop.services.order_desk.pending(grant=Grant(Role.OWNER))
    assert {other_ref, mine} <= {ln.order.ref for ln in pending.lines}
