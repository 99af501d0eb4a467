"""What goes wrong around buying in WeChat, end to end over HTTP between the WeChat emulator, the shop's
real WeChat channel and the WeChat Pay emulator (``bot.wechat_sandbox``):

- the shop answers a ``买 N`` slower than WeChat waits: WeChat retries (or is answered ``success``), one
  order is made, and the pay link reaches the buyer as a customer-service message;
- a stale notify (signed more than 5 minutes ago) is refused, retried or not, and changes nothing;
- a late payment: WeChat Pay took the money, but the shop's order had expired meanwhile; with stock left
  it is delivered (found by the reconciliation), with the stock sold to someone else it is refunded
  through WeChat Pay (told by WeChat Pay's notify retry);
- a notify of another merchant is refused and changes nothing; a genuine one for an order the shop never
  made sells nothing and its money goes back through WeChat Pay.

WeChat's 5-second wait is compressed (the emulator's ``push_timeout``); the shop's clock is moved, never
waited for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.wechat_sandbox import WechatSandbox, free_port
from core import tables as t
from core.clock import FrozenClock
from core.models import OrderStatus
from core.services import Services
from core.services.wechat_pay import CHECK_EVERY, FIRST_CHECK_AFTER
from handlers.wechat.paid import Merchant, WechatPayReconciler
from tests.conftest import query, sql
from tests.e2e.wechat_buying import BUYER, PAY_LINK, STRANGER, new_product, order_in_chat, wechat_shop

WECHAT_WAITS = 0.3  # seconds: WeChat's 5 s, compressed
SLOW = 1.0  # seconds the shop's checkout takes in the slow test: longer than WeChat waits


@pytest.fixture
async def wx(tmp_path: Path) -> AsyncIterator[WechatSandbox]:
    async with wechat_shop(tmp_path) as sandbox:
        yield sandbox


def _custom(wx: WechatSandbox, openid: str = BUYER) -> list[str]:
    return [r.text for r in wx.emu.received(openid) if r.via == "custom"]


@pytest.mark.parametrize(
    ("wechat_waits", "shop_waits", "retried"),
    [
        pytest.param(WECHAT_WAITS, 4.0, True, id="wechat-hangs-up-and-retries"),
        pytest.param(2 * SLOW, SLOW / 4, False, id="the-shop-answers-success-in-time"),
    ],
)
async def test_a_buy_answered_slower_than_wechat_waits_makes_one_order_and_the_link_arrives_as_a_message(
    wx: WechatSandbox, monkeypatch: pytest.MonkeyPatch, wechat_waits: float, shop_waits: float, retried: bool
) -> None:
    """WeChat waits 5 s for the passive reply; the shop stops waiting for its answer at 4. Either WeChat
    hangs up first (the push queued, the shop's 4 s ran past WeChat's 5: the passive reply would go to a
    closed connection) and retries, or the shop answers ``success`` in time; either way the answer goes
    out as a customer-service message, and the retry makes no second order."""
    await new_product(wx.services)
    await wx.emu.subscribe(BUYER)
    await wx.emu.send_text(BUYER, "商品")
    await wx.emu.send_text(BUYER, "1")
    checkout = wx.services.checkout.checkout_or_reuse
    checkouts = 0

    async def slow_checkout(*args: Any, **kwargs: Any) -> Any:
        nonlocal checkouts
        checkouts += 1
        await asyncio.sleep(SLOW)  # the database is having a bad day
        return await checkout(*args, **kwargs)

    monkeypatch.setattr(wx.services.checkout, "checkout_or_reuse", slow_checkout)
    wx.emu.push_timeout = wechat_waits
    wx.callback.config = replace(wx.callback.config, reply_within=shop_waits)
    push = await wx.emu.send_text(BUYER, "买 1")
    assert (push.attempts > 1) is retried
    assert push.seen is None and not push.failed  # the retry got ``success``: no "无法提供服务"
    await wx.callback.settle()  # the first answer completes
    history = await wx.services.orders.history(await _buyer_id(wx), limit=10)
    assert len(history) == 1 and checkouts == 1
    (line,) = history
    assert line.order.status is OrderStatus.PENDING
    assert await wx.deliver() == 1
    (text,) = _custom(wx)
    link = PAY_LINK.search(text)
    assert link is not None and link.group(1) == line.order.ref and "19.90" in text
    status, page = await wx.open_page(BUYER, wx.url("pay", line.order.ref))
    assert status == 200 and "getBrandWCPayRequest" in page  # the link works


async def _buyer_id(wx: WechatSandbox) -> int:
    found = await wx.services.users.find("wechat", BUYER)
    assert found is not None
    return found.id


async def sql_reopen(services: Services, ref: str) -> None:
    """The order's row at WeChat Pay open again, as if settling it had never been recorded."""
    w = t.wechat_pay_orders
    await sql(services, update(w).where(w.c.order_ref == ref).values(state="open", checked_at=None))


def _reconciler(wx: WechatSandbox) -> WechatPayReconciler:
    return WechatPayReconciler(wx.services, wx.pay, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id))


async def _snapshot(services: Services) -> dict[str, Any]:
    """What a payment could change: its records, the orders, the keys, the ledger, the outbox."""
    tables = (t.payments, t.payment_notices, t.orders, t.outbox, t.ledger_entries, t.commissions)
    seen: dict[str, Any] = {}
    for table in tables:
        seen[table.name] = sorted(tuple(r) for r in await query(services, select(table)))
    k = t.keys
    seen["keys"] = sorted(tuple(r) for r in await query(services, select(k.c.id, k.c.status, k.c.order_id)))
    return seen


def _move_shop_clock(wx: WechatSandbox, **delta: float) -> FrozenClock:
    clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(**delta))
    wx.services.ctx.clock = clock
    return clock


async def test_a_stale_notify_is_refused_and_changes_nothing(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    before = await _snapshot(wx.services)
    wx.platform.backdate_next_notify(600)  # signed ten minutes ago: a replayed old notify
    await wx.pay_page(BUYER, page)
    await wx.platform.flush()  # WeChat Pay tries again: the same stale signature
    (notice,) = wx.platform.notifies
    assert [a.status for a in notice.attempts] == [401, 401] and not notice.delivered
    assert await _snapshot(wx.services) == before
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING


async def test_a_late_payment_with_stock_left_is_delivered(wx: WechatSandbox) -> None:
    await new_product(wx.services, keys=2)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    wx.platform.drop_next_notify()
    await wx.pay_page(BUYER, page)  # WeChat Pay has the money; the shop never hears of it
    _move_shop_clock(wx, hours=1)
    assert await wx.services.orders.expire_due() == 1
    assert (await wx.services.orders.get(ref)).status is OrderStatus.EXPIRED
    assert await _reconciler(wx).run() == 1  # asks WeChat Pay: paid
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    assert wx.platform.orders[ref].trade_state == "SUCCESS" and wx.platform.refunds == {}
    await wx.deliver()
    assert any(ref in text and "TX-VIP-" in text for text in _custom(wx))


async def test_a_late_payment_for_stock_sold_meanwhile_goes_back_through_wechat_pay(
    wx: WechatSandbox,
) -> None:
    await new_product(wx.services, keys=1)
    late = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", late))
    real_url = wx.platform.orders[late].notify_url
    wx.platform.orders[late].notify_url = f"http://127.0.0.1:{free_port()}/wechat/pay/notify"
    await wx.pay_page(BUYER, page)  # the shop is down (a deploy) when WeChat Pay first notifies
    (notice,) = wx.platform.notifies
    assert not notice.delivered and notice.due is not None  # WeChat Pay will try again
    _move_shop_clock(wx, hours=1)
    assert await wx.services.orders.expire_due() == 1
    other = await order_in_chat(wx, STRANGER)  # the key went back on sale, and someone else buys it
    _, theirs = await wx.open_page(STRANGER, wx.url("pay", other))
    await wx.pay_page(STRANGER, theirs)
    assert (await wx.services.orders.get(other)).status is OrderStatus.DELIVERED

    notice.url = real_url  # the shop is back; WeChat Pay's retry reaches it
    await wx.platform.flush()
    assert notice.delivered
    assert (await wx.services.orders.get(late)).status is OrderStatus.REFUND_DUE  # nothing to deliver
    (owed,) = await wx.services.refunds.owed_by_provider("wechatpay")
    assert (owed.order_ref, owed.amount) == (late, 1990)
    await wx.deliver()  # the sender pays it back through WeChat Pay
    (refund,) = wx.platform.refunds.values()
    assert (refund.out_trade_no, refund.refund, refund.total) == (late, 1990, 1990)
    await wx.platform.drain()
    assert refund.status == "SUCCESS" and await wx.services.refunds.owed_by_provider("wechatpay") == []
    assert (await wx.services.orders.get(late)).status is OrderStatus.REFUNDED
    told = [text for text in _custom(wx) if late in text]
    assert told and "原路退回" in told[-1] and "售罄" in told[-1]  # back the way it came: sold out
    assert (await wx.services.orders.get(other)).status is OrderStatus.DELIVERED  # theirs untouched


async def test_a_notify_of_another_merchant_is_refused_and_changes_nothing(wx: WechatSandbox) -> None:
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    before = await _snapshot(wx.services)
    wx.platform.next_notify_for_another_merchant()
    await wx.pay_page(BUYER, page)
    (notice,) = wx.platform.notifies
    assert [a.status for a in notice.attempts] == [401]
    assert await _snapshot(wx.services) == before


async def test_a_genuine_notify_for_an_order_the_shop_never_made_delivers_nothing_and_its_money_goes_back(
    wx: WechatSandbox,
) -> None:
    """WeChat Pay really took this money (its signature says so) for an ``out_trade_no`` of ours that the
    shop does not know (a database restored from an older backup): refusing the notify would leave the
    money with the merchant and WeChat Pay retrying for a day. The shop takes it as any payment it cannot
    honour: nothing is sold, the payment is recorded as rejected and paid back to whoever paid."""
    await new_product(wx.services)
    await wx.emu.subscribe(BUYER)
    before = await _snapshot(wx.services)
    expires = datetime.now(UTC) + timedelta(minutes=15)
    await wx.pay.jsapi_prepay(
        out_trade_no="NEVERMADE0000001", description="?", total=1990, openid=BUYER, time_expire=expires
    )
    await wx.platform.pay("NEVERMADE0000001", openid=BUYER)
    (notice,) = wx.platform.notifies
    assert notice.delivered
    after = await _snapshot(wx.services)
    for unchanged in ("orders", "keys", "ledger_entries", "commissions"):
        assert after[unchanged] == before[unchanged], unchanged
    (owed,) = await wx.services.refunds.owed_by_provider("wechatpay")
    assert (owed.order_ref, owed.amount, owed.reason) == ("NEVERMADE0000001", 1990, "unknown_order")
    await wx.deliver()
    await wx.platform.drain()
    (refund,) = wx.platform.refunds.values()
    assert (refund.out_trade_no, refund.refund, refund.status) == ("NEVERMADE0000001", 1990, "SUCCESS")
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    assert any("NEVERMADE0000001" in text and "原路退回" in text for text in _custom(wx))
    await wx.platform.replay(notice)  # again: nothing more
    await wx.deliver()
    assert len(wx.platform.refunds) == 1
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []


async def _refunded_by_admin(wx: WechatSandbox, outcome: str) -> tuple[str, Any]:
    """The buyer pays an order, an admin refunds it, and WeChat Pay's refund ends ``outcome``."""
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    await wx.pay_page(BUYER, page)
    await wx.deliver()
    wx.platform.refund_outcome = outcome
    await wx.services.refunds.request_refund(ref, actor="admin:1", reason="admin")
    await wx.deliver()  # the sender asks WeChat Pay to refund the charge
    await wx.platform.drain()  # and WeChat Pay's refund ends as the test says, notified
    (refund,) = wx.platform.refunds.values()
    assert refund.status == outcome
    return ref, refund


async def test_an_abnormal_refund_is_reported_once_stays_owed_and_ends_when_the_merchant_handles_it(
    wx: WechatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """WeChat Pay could not pay the buyer back (their account is closed: ABNORMAL). The payment stays owed
    and the order refund-due; the reconciliation, asking every minute, logs the trouble as an error once,
    not every minute. When the merchant handles it in the merchant platform (发起异常退款) the same refund
    ends SUCCESS and the order is refunded, the buyer told."""
    ref, refund = await _refunded_by_admin(wx, "ABNORMAL")
    caplog.clear()
    reconciler = _reconciler(wx)
    for _ in range(3):
        await reconciler.run()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "ABNORMAL" in errors[0] and "发起异常退款" in errors[0], errors
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUND_DUE
    assert [p.order_ref for p in await wx.services.refunds.owed_by_provider("wechatpay")] == [ref]

    await wx.platform.handle_abnormal_refund(refund.out_refund_no)  # REFUND.SUCCESS reaches the shop
    assert refund.status == "SUCCESS"
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    await wx.deliver()
    assert "退款" in wx.emu.texts(BUYER)[-1] and ref in wx.emu.texts(BUYER)[-1]
    assert len(wx.platform.refunds) == 1  # one refund, never a second


async def test_a_closed_refund_is_asked_for_again_under_its_own_number_and_completes(
    wx: WechatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A refund WeChat Pay closed (failed) is submitted again under the same refund number, as WeChat Pay
    asks: the reconciliation does it, the refund goes through, and the order ends refunded — no second
    refund, the buyer paid back once."""
    ref, refund = await _refunded_by_admin(wx, "CLOSED")
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUND_DUE
    assert wx.platform.orders[ref].refunded == 0  # WeChat Pay kept nothing back: the money is ours again
    wx.platform.refund_outcome = "SUCCESS"
    caplog.clear()
    await _reconciler(wx).run()  # asks again; WeChat Pay settles it on its own and notifies
    await wx.platform.drain()
    assert refund.status == "SUCCESS" and len(wx.platform.refunds) == 1
    assert wx.platform.orders[ref].refunded == 1990
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    assert any("asked for again" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_order_paid_and_refunded_at_wechat_pay_unseen_by_the_shop_is_reported_and_no_longer_asked(
    wx: WechatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """The payment's notify was lost, and the merchant refunded the payment in the merchant platform before
    the reconciliation asked: WeChat Pay says REFUND. The money went back, so nothing is delivered; the
    admins learn of it (an error, once) and the order is not asked about every minute for ever."""
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    wx.platform.drop_next_notify()
    await wx.pay_page(BUYER, page)
    wx.pay.config = replace(wx.pay.config, refund_notify_url=None)  # the merchant platform's own refund
    await wx.pay.refund(out_trade_no=ref, out_refund_no="MERCHANT-1", refund=1990, total=1990)
    await wx.platform.drain()
    assert (await wx.pay.query(ref)).trade_state == "REFUND"
    caplog.clear()
    reconciler = _reconciler(wx)
    clock = _move_shop_clock(wx, seconds=FIRST_CHECK_AFTER.total_seconds() + 1)
    await reconciler.run()
    assert await wx.services.wechat_pay.state(ref) == "closed"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and ref in errors[0] and "refunded" in errors[0], errors
    order = await wx.services.orders.get(ref)
    assert order.status is OrderStatus.PENDING  # expires as unpaid: its keys go back on sale
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    clock.advance(seconds=CHECK_EVERY.total_seconds() + 1)
    assert await wx.services.wechat_pay.due() == []  # not asked about again


async def test_the_shops_own_refunded_payment_whose_row_stayed_open_settles_as_paid(
    wx: WechatSandbox,
) -> None:
    """The shop recorded the payment and refunded it, but the order's row at WeChat Pay stayed open (the
    process died between the two): REFUND for a charge the shop knows settles it as paid, quietly."""
    await new_product(wx.services)
    ref = await order_in_chat(wx)
    _, page = await wx.open_page(BUYER, wx.url("pay", ref))
    await wx.pay_page(BUYER, page)
    await wx.services.refunds.request_refund(ref, actor="admin:1", reason="admin")
    await wx.deliver()
    await wx.platform.drain()
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    await sql_reopen(wx.services, ref)
    _move_shop_clock(wx, seconds=FIRST_CHECK_AFTER.total_seconds() + 1)
    assert await _reconciler(wx).run() == 1
    assert await wx.services.wechat_pay.state(ref) == "paid"


async def test_money_for_an_order_the_shop_never_made_from_a_payer_it_never_saw_still_goes_back(
    wx: WechatSandbox,
) -> None:
    """As above, but whoever paid never wrote to the official account (a QR scanned by someone the shop
    does not know): with no user to address the refund to, the money stayed owed for ever. The payer's
    openid (of our AppID) is enough to make them a user, and WeChat Pay refunds by the order."""
    expires = datetime.now(UTC) + timedelta(minutes=15)
    await wx.pay.jsapi_prepay(
        out_trade_no="NEVERMADE0000002", description="?", total=990, openid=STRANGER, time_expire=expires
    )
    await wx.platform.pay("NEVERMADE0000002", openid=STRANGER)
    (owed,) = await wx.services.refunds.owed_by_provider("wechatpay")
    assert (owed.order_ref, owed.amount, owed.reason) == ("NEVERMADE0000002", 990, "unknown_order")
    assert owed.payer_id is not None
    await wx.deliver()
    await wx.platform.drain()
    (refund,) = wx.platform.refunds.values()
    assert (refund.out_trade_no, refund.refund, refund.status) == ("NEVERMADE0000002", 990, "SUCCESS")
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
