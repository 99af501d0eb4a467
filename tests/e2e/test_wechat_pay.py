"""Buying in the WeChat official account with WeChat Pay, end to end over HTTP, in each of the callback's
three encryption modes (the other tests in safe mode): the WeChat emulator pushes the buyer's messages to
the shop's real callback, the buyer opens the pay link inside WeChat (OAuth through the emulator), the
page's signed ``getBrandWCPayRequest`` parameters are checked and paid by the WeChat Pay emulator, whose
signed, encrypted notify confirms the order; the order page shows the keys to their buyer only. Forged,
stale and wrong-amount notifies change nothing; a lost notify is recovered by the reconciliation; an
expired order is closed at WeChat Pay. What goes wrong around a payment: ``test_wechat_pay_edges.py``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.wechat_sandbox import WechatSandbox
from core.clock import FrozenClock
from core.models import OrderStatus, PaymentStatus
from core.services.wechat_pay import CHECK_EVERY, FIRST_CHECK_AFTER
from handlers.wechat.paid import Merchant, WechatPayReconciler
from sandbox.wechat.state import MODES
from sandbox.wechatpay import PaymentRefused
from tests.e2e.wechat_buying import BUYER, STRANGER, new_product, order_in_chat, wechat_shop


@pytest.fixture
async def wx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WechatSandbox]:
    """The shop in safe mode (WeChat's recommended one), or in the mode a test asks for indirectly."""
    async with wechat_shop(tmp_path, getattr(request, "param", "safe")) as sandbox:
        yield sandbox


@pytest.mark.parametrize("wx", MODES, indirect=True)
async def test_a_buyer_orders_in_the_chat_pays_on_the_page_and_sees_the_keys_on_the_order_page(
    wx: WechatSandbox,
) -> None:
    """In each of the callback's encryption modes: the emulator accepts only replies in the account's
    mode (encrypted in safe mode, never in plaintext mode), so a pay link in the chat means it was one."""
    await new_product(wx.services)
    ref = await order_in_chat(wx, qty=2)
    assert "39.80" in wx.emu.texts(BUYER)[-1] and "分钟" in wx.emu.texts(BUYER)[-1]

    status, page = await wx.open_page(BUYER, wx.url("pay", ref))
    assert status == 200 and "微信支付" in page and "39.80" in page
    transaction_id = await wx.pay_page(BUYER, page)

    order = await wx.services.orders.get(ref)
    assert order.status is OrderStatus.DELIVERED
    assert [n.delivered for n in wx.platform.notifies] == [True]
    assert await wx.services.wechat_pay.state(ref) == "paid"

    assert await wx.deliver() >= 1  # the keys, as a customer-service message in the chat
    chat = wx.emu.texts(BUYER)[-1]
    sold = re.findall(r"<code>(TX-VIP-\d{4})</code>", (await wx.open_page(BUYER, wx.url("order", ref)))[1])
    assert len(sold) == 2 and all(k in chat for k in sold)
    status, keys = await wx.open_page(BUYER, wx.url("order", ref))
    assert status == 200 and len(re.findall(r"<code>TX-VIP-\d{4}</code>", keys)) == 2
    # paying again, or the notify again, changes nothing
    with pytest.raises(PaymentRefused):
        await wx.pay_page(BUYER, page)
    await wx.platform.replay(wx.platform.notifies[0])
    payments = await wx.services.refunds.refunds_due(ref)
    assert payments == [] and transaction_id


async def test_an_admins_refund_goes_back_through_wechat_pay_and_the_buyer_is_told(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    transaction_id = await wx.pay_page(BUYER, page)
    await wx.deliver()
    await wx.services.refunds.request_refund(ref, actor="admin:1", reason="admin")
    await wx.deliver()  # the sender asks WeChat Pay to refund the charge
    (refund,) = wx.platform.refunds.values()
    assert (refund.out_trade_no, refund.refund) == (ref, 1990)
    await wx.platform.drain()  # WeChat Pay settles it and notifies the shop
    order = await wx.services.orders.get(ref)
    assert order.status is OrderStatus.REFUNDED
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    assert "退款" in wx.emu.texts(BUYER)[-1] and transaction_id
    # asked again (the outbox retried after a crash), WeChat Pay refunds nothing more
    await wx.deliver()
    assert len(wx.platform.refunds) == 1


async def test_someone_else_cannot_open_the_pay_page_or_the_keys_of_an_order(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    await wx.emu.subscribe(STRANGER)  # a follower the shop knows, with no order of theirs
    status, page = await wx.open_page(STRANGER, wx.url("pay", ref))
    assert status == 404 and "不属于您" in page and "getBrandWCPayRequest" not in page
    _, mine = await wx.open_page(BUYER, wx.url("pay", ref))
    await wx.pay_page(BUYER, mine)
    status, keys = await wx.open_page(STRANGER, wx.url("order", ref))
    assert status == 404 and "TX-VIP" not in keys


async def test_a_notify_with_a_bad_signature_changes_nothing_and_the_page_learns_of_the_payment(
    wx: WechatSandbox,
) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    wx.platform.sign_next_notify_badly("wrong_key")
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    assert wx.platform.notifies[0].attempts[0].status == 401
    # the buyer opens the page again: WeChat Pay has their money, so the shop asks it and delivers
    status, again = await wx.open_page(BUYER, wx.url("pay", ref))
    assert status == 200 and "已支付" in again and "getBrandWCPayRequest" not in again
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED


async def test_a_genuine_notify_for_another_amount_delivers_nothing_and_is_owed_back(
    wx: WechatSandbox,
) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    wx.platform.change_next_notify_amount(1)  # genuinely signed, but 0.01 for a 19.90 order
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(ref)).status is not OrderStatus.DELIVERED
    owed = await wx.services.refunds.owed_by_provider("wechatpay")
    assert [p.order_ref for p in owed] == [ref] and owed[0].amount == 1


async def test_a_lost_notify_is_recovered_by_the_reconciliation(wx: WechatSandbox, tmp_path: Path) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    wx.platform.drop_next_notify()
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    clock = FrozenClock(wx.services.ctx.clock.now() + FIRST_CHECK_AFTER + timedelta(seconds=1))
    wx.services.ctx.clock = clock
    reconciler = WechatPayReconciler(
        wx.services, wx.pay, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id)
    )
    assert await reconciler.run() == 1
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    clock.advance(seconds=CHECK_EVERY.total_seconds() + 1)
    assert await reconciler.run() == 0  # settled: not asked about again


async def test_an_expired_unpaid_order_is_closed_at_wechat_pay_and_cannot_be_paid(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(hours=1))
    wx.services.ctx.clock = clock
    await wx.services.orders.expire_due()
    reconciler = WechatPayReconciler(
        wx.services, wx.pay, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id)
    )
    assert await reconciler.run() == 1
    assert await wx.services.wechat_pay.state(ref) == "closed"
    with pytest.raises(PaymentRefused):
        await wx.pay_page(BUYER, page)
    status, again = await wx.open_page(BUYER, wx.url("pay", ref))
    assert status == 410 and "过期" in again


async def test_a_desktop_browser_gets_a_native_qr_code_and_never_the_keys(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    status, page = await wx.open_page("desktop", wx.url("pay", ref), in_wechat=False)
    assert status == 200 and "<svg" not in page and "?qr=1" in page  # asked for, not made on sight
    status, page = await wx.open_page("desktop", wx.url("pay", ref) + "?qr=1", in_wechat=False)
    assert status == 200 and "<svg" in page and "扫描" in page
    status, page = await wx.open_page("desktop", wx.url("pay", ref), in_wechat=False)  # reloaded
    assert status == 200 and "<svg" in page
    native = wx.platform.orders[ref]
    await wx.platform.pay_native(native.code_url, openid=BUYER)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    status, keys = await wx.open_page("desktop", wx.url("order", ref), in_wechat=False)
    assert status == 403 and "TX-VIP" not in keys
    assert PaymentStatus  # imported for the refund tests that follow


@pytest.mark.parametrize("query", ["", "?qr=0", "?qr=yes", "?qr=%3Cscript%3E", "?qr=", "?QR=1"])
async def test_a_link_opened_outside_wechat_by_a_previewer_leaves_the_order_payable_in_wechat(
    wx: WechatSandbox, query: str
) -> None:
    """Something outside WeChat fetches the pay link first (a link checker, a previewer, the buyer's
    desktop): it sees the order and a way to ask for a QR code, and nothing is opened at WeChat Pay, whose
    one trade per order would then be a Native QR the phone cannot pay. The buyer then pays in WeChat."""
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    status, page = await wx.open_page("previewer", wx.url("pay", ref) + query, in_wechat=False)
    assert status == 200 and "<svg" not in page and "19.90" in page
    assert "微信" in page and f"/pay/{ref}?qr=1" in page
    assert ref not in wx.platform.orders and await wx.services.wechat_pay.trade_type(ref) is None
    _, mine = await wx.open_page(BUYER, wx.url("pay", ref))
    assert "getBrandWCPayRequest" in mine
    await wx.pay_page(BUYER, mine)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED


async def test_the_desktop_page_speaks_the_buyers_language(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    await wx.emu.send_text(BUYER, "english")
    status, page = await wx.open_page("desktop", wx.url("pay", ref), in_wechat=False)
    assert status == 200 and "Show the QR code" in page and "open this link in WeChat" in page


async def test_an_order_wechat_pay_never_had_is_settled_once_its_reservation_is_over(
    wx: WechatSandbox,
) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    await wx.services.wechat_pay.opened(ref, "JSAPI")  # recorded, but the prepay never reached WeChat Pay
    reconciler = WechatPayReconciler(
        wx.services, wx.pay, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id)
    )
    clock = FrozenClock(wx.services.ctx.clock.now() + FIRST_CHECK_AFTER + timedelta(seconds=1))
    wx.services.ctx.clock = clock
    assert await reconciler.run() == 0 and await wx.services.wechat_pay.state(ref) == "open"  # still payable
    clock.advance(hours=1)
    assert await reconciler.run() == 1 and await wx.services.wechat_pay.state(ref) == "closed"
