"""Refunds at the emulated platform: only of paid orders, never more than was paid, PROCESSING until
settled, then notified."""

from __future__ import annotations

from dataclasses import replace

import pytest

from handlers.wechat.pay import OrderNotFound, WechatPayError
from tests.wechatpay_rig import BUYER, Rig, running_rig

NO = "K20250101000001"


async def paid(rig: Rig, total: int = 990) -> None:
    await rig.jsapi_order(NO, total)
    await rig.platform.pay(NO, openid=BUYER)


async def test_an_unpaid_order_cannot_be_refunded(rig: Rig) -> None:
    await rig.jsapi_order(NO)
    with pytest.raises(OrderNotFound) as e:
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    assert (e.value.status, e.value.code) == (404, "RESOURCE_NOT_EXISTS")


async def test_the_total_must_be_the_orders(rig: Rig) -> None:
    await paid(rig, 990)
    with pytest.raises(WechatPayError) as e:
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=100, total=1000)
    assert (e.value.status, e.value.code) == (400, "INVALID_REQUEST")


async def test_refunds_together_never_exceed_what_was_paid(rig: Rig) -> None:
    await paid(rig, 990)
    with pytest.raises(WechatPayError, match="超过"):
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R0", refund=991, total=990)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=500, total=990)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R2", refund=490, total=990)
    with pytest.raises(WechatPayError, match="超过"):
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R3", refund=1, total=990)


async def test_a_closed_refund_gives_its_amount_back_to_refund_again(rig: Rig) -> None:
    await paid(rig, 990)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1", "CLOSED")
    assert (
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R2", refund=990, total=990)
    ).status == "PROCESSING"


async def test_the_same_refund_number_with_other_amounts_is_refused(rig: Rig) -> None:
    await paid(rig, 990)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=500, total=990)
    with pytest.raises(WechatPayError) as e:
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=400, total=990)
    assert e.value.status == 400 and len(rig.platform.refunds) == 1


async def test_a_settled_refund_cannot_be_settled_again(rig: Rig) -> None:
    await paid(rig)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1")
    with pytest.raises(ValueError, match="already SUCCESS"):
        await rig.platform.settle_refund("R1", "CLOSED")


async def test_refunds_settle_on_their_own_as_told_and_are_notified() -> None:
    async with running_rig(refund_outcome="ABNORMAL", refund_delay=0.0) as rig:
        await paid(rig)
        asked = await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
        assert asked.status == "PROCESSING"
        await rig.platform.drain()
        assert rig.shop.received[-1].event_type == "REFUND.ABNORMAL"
        assert (await rig.pay.query_refund("R1")).status == "ABNORMAL"


async def test_a_refund_asked_without_notify_url_is_not_notified(rig: Rig) -> None:
    await paid(rig)
    pay = rig.pay
    pay.config = replace(pay.config, refund_notify_url=None)
    await pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1")
    assert [n.event_type for n in rig.platform.notifies] == ["TRANSACTION.SUCCESS"]
    assert (await pay.query_refund("R1")).status == "SUCCESS"


async def test_a_closed_refund_asked_again_under_its_own_number_goes_on(rig: Rig) -> None:
    """WeChat Pay's rule: a failed refund is submitted again with its original out_refund_no."""
    await paid(rig, 990)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1", "CLOSED")
    again = await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    assert again.status == "PROCESSING" and len(rig.platform.refunds) == 1
    await rig.platform.settle_refund("R1")
    assert (await rig.pay.query_refund("R1")).status == "SUCCESS"
    with pytest.raises(WechatPayError, match="超过"):  # all of it is refunded now
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R2", refund=1, total=990)


async def test_a_closed_refund_cannot_be_asked_again_once_another_took_its_amount(rig: Rig) -> None:
    await paid(rig, 990)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1", "CLOSED")
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R2", refund=990, total=990)
    with pytest.raises(WechatPayError, match="超过"):
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    assert rig.platform.refunds["R1"].status == "CLOSED"


async def test_an_abnormal_refund_the_merchant_handles_ends_success_and_is_notified(rig: Rig) -> None:
    await paid(rig)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    await rig.platform.settle_refund("R1", "ABNORMAL")
    await rig.platform.handle_abnormal_refund("R1")
    assert (await rig.pay.query_refund("R1")).status == "SUCCESS"
    assert [n.event_type for n in rig.platform.notifies][-2:] == ["REFUND.ABNORMAL", "REFUND.SUCCESS"]
    with pytest.raises(ValueError, match="not ABNORMAL"):
        await rig.platform.handle_abnormal_refund("R1")
