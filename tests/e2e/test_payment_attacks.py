"""Attacks on the payment paths (hostile buyer, unlucky timing) that still break a money rule.

Each test states the rule it protects and fails on the current code; see the attack report for the
suggested fix. Production code is untouched here."""

from __future__ import annotations

import asyncio

import pytest

from core.models import DeliveryKind, OrderStatus
from tests.e2e.conftest import ADMIN, Shop

BUYER = 801
ADMIN2 = 900_002


@pytest.fixture
async def two_admins(shop: Shop) -> Shop:
    """The same shop, its bot rebuilt with two admins."""
    shop.emu.user(ADMIN2, "Admin2")
    await shop.rebuild(admin_ids=[ADMIN, ADMIN2])
    return shop


@pytest.mark.expect_errors
async def test_a_stars_refund_answered_with_403_is_not_dropped_silently(shop: Shop) -> None:
    """A refund the Bot API answers with 403 (Forbidden) is neither retried nor reported: the outbox takes
    it for "the user blocked the bot", marks the row failed and moves on. The payer is never refunded, the
    order stays refund_due for good, and no admin hears of it."""
    await shop.product(keys=1)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    ref = invoice.message["_payload"]
    charge = (await shop.emu.pay(BUYER, invoice))["charge_id"]
    await shop.emu.wait_for(BUYER, lambda s: "delivered" in s.text)
    shop.emu.fail_next("refundStarPayment", 403)
    await shop.services.refunds.request_refund(ref, actor="admin:1")
    for _ in range(100):
        told = any(charge in s.text for s in shop.emu.messages(ADMIN))
        if shop.emu.payments[charge].refunded or told:
            break
        await asyncio.sleep(0.05)
    assert shop.emu.payments[charge].refunded or any(charge in s.text for s in shop.emu.messages(ADMIN)), (
        f"charge neither refunded nor reported; order is {(await shop.services.orders.get(ref)).status}"
    )


@pytest.mark.expect_errors
async def test_a_paid_manual_order_reaches_the_admins_even_if_one_of_them_blocked_the_bot(
    two_admins: Shop,
) -> None:
    """The "manual order is paid" notice goes to the admins inside the buyer's outbox message, one admin
    after another: the first admin who blocked the bot raises 403, which the sender takes for the buyer
    having blocked it. The remaining admins are never told (the order is paid, never delivered, never
    refunded) and the buyer is flagged bot_blocked."""
    shop = two_admins
    await shop.product(delivery_kind=DeliveryKind.MANUAL)
    shop.emu.user(BUYER, "Ann")
    shop.emu.block(ADMIN)
    invoice = await shop.buy_one(BUYER)
    await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: "Payment received" in s.text)
    ref = invoice.message["_payload"]
    assert (await shop.services.orders.get(ref)).status is OrderStatus.PAID
    for _ in range(60):
        if any(ref in s.text for s in shop.emu.messages(ADMIN2)):
            break
        await asyncio.sleep(0.05)
    assert any(ref in s.text for s in shop.emu.messages(ADMIN2)), "no admin was told of the paid manual order"


@pytest.mark.expect_errors
async def test_an_admin_who_blocked_the_bot_does_not_mark_the_buyer_as_blocked(two_admins: Shop) -> None:
    shop = two_admins
    await shop.product(delivery_kind=DeliveryKind.MANUAL)
    shop.emu.user(BUYER, "Ann")
    shop.emu.block(ADMIN)
    invoice = await shop.buy_one(BUYER)
    await shop.emu.pay(BUYER, invoice)
    await shop.emu.wait_for(BUYER, lambda s: "Payment received" in s.text)
    await asyncio.sleep(1)
    user = await shop.services.users.ensure("telegram", str(BUYER))
    assert not user.bot_blocked


@pytest.mark.expect_errors
async def test_a_busy_admin_chat_does_not_repeat_the_buyers_payment_received_message(shop: Shop) -> None:
    """The admins' "manual order is paid" notice rides in the buyer's outbox row after the buyer's own
    message: when the admin chat is rate-limited (429), the whole row is retried and the buyer is told
    "payment received" again."""
    await shop.product(keys=0, delivery_kind=DeliveryKind.MANUAL)
    buyers = [811, 812, 813, 814]
    invoices = []
    for b in buyers:
        shop.emu.user(b, f"B{b}")
        invoices.append(await shop.buy_one(b))
    await asyncio.gather(*(shop.emu.pay(b, inv) for b, inv in zip(buyers, invoices, strict=True)))
    for _ in range(80):
        if len([s for s in shop.emu.messages(ADMIN) if "manual order" in s.text]) >= len(buyers):
            break
        await asyncio.sleep(0.1)
    counts = {b: sum("Payment received" in s.text for s in shop.emu.messages(b)) for b in buyers}
    assert all(n == 1 for n in counts.values()), counts


@pytest.mark.expect_errors
async def test_the_admins_hear_of_a_paid_manual_order_even_if_the_buyer_blocked_the_bot(shop: Shop) -> None:
    """The admins' notice is sent only after the buyer's own message succeeds: a buyer who blocked the bot
    (403) or whose message Telegram refuses makes the row undeliverable, and no admin ever learns the order
    is paid. It stays paid, neither delivered nor refunded."""
    await shop.product(delivery_kind=DeliveryKind.MANUAL)
    shop.emu.user(BUYER, "Ann")
    invoice = await shop.buy_one(BUYER)
    ref = invoice.message["_payload"]
    shop.emu.block(BUYER)
    assert (await shop.emu.pay(BUYER, invoice))["paid"]
    for _ in range(60):
        if any(ref in s.text for s in shop.emu.messages(ADMIN)):
            break
        await asyncio.sleep(0.05)
    assert (await shop.services.orders.get(ref)).status is OrderStatus.PAID
    assert any(ref in s.text for s in shop.emu.messages(ADMIN)), "no admin was told of the paid manual order"
