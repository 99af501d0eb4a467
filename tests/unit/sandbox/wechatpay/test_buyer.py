"""The buyer's side: what the WeChat client lets a buyer pay, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.wechatpay import PaymentRefused
from sandbox.wechatpay.buyer import (
    CODE_EXPIRED,
    ORDER_EXPIRED,
    ORDER_PAID,
    PREPAY_EXPIRED,
    SIGNATURE_FAILED,
    WRONG_PAYER,
)
from tests.wechatpay_rig import BUYER, Rig

NO = "K20250101000001"


async def test_an_order_past_its_time_expire_cannot_be_paid_and_stays_unpaid(rig: Rig) -> None:
    params = rig.pay.jsapi_params(await rig.jsapi_order(NO, time_expire=rig.clock.at(600)))
    rig.advance(601)
    with pytest.raises(PaymentRefused) as e:
        rig.platform.check_js_pay(params)
    assert e.value.reason == ORDER_EXPIRED
    with pytest.raises(PaymentRefused, match=ORDER_EXPIRED):
        await rig.platform.pay(NO, openid=BUYER)
    assert (await rig.pay.query(NO)).trade_state == "NOTPAY" and rig.platform.notifies == []


async def test_a_jsapi_order_is_paid_only_by_the_buyer_it_was_placed_for(rig: Rig) -> None:
    await rig.jsapi_order(NO, openid=BUYER)
    with pytest.raises(PaymentRefused, match=WRONG_PAYER):
        await rig.platform.pay(NO, openid="o_someone_else")
    await rig.platform.pay(NO, openid=BUYER)


async def test_an_order_is_paid_once(rig: Rig) -> None:
    params = rig.pay.jsapi_params(await rig.jsapi_order(NO))
    await rig.platform.pay_js(params, openid=BUYER)
    with pytest.raises(PaymentRefused, match=ORDER_PAID):
        await rig.platform.pay_js(params, openid=BUYER)
    assert len(rig.platform.notifies) == 1


async def test_a_prepay_id_works_for_two_hours(rig: Rig) -> None:
    params = rig.pay.jsapi_params(await rig.jsapi_order(NO, time_expire=rig.clock.at(86400)))
    rig.advance(7199)
    assert rig.platform.check_js_pay(params) == NO
    rig.advance(1)
    with pytest.raises(PaymentRefused, match=PREPAY_EXPIRED):
        rig.platform.check_js_pay(params)
    fresh = rig.pay.jsapi_params(await rig.jsapi_order(NO, time_expire=rig.clock.at(86400 - 7200)))
    assert rig.platform.check_js_pay(fresh) == NO


@pytest.mark.parametrize(
    "changes",
    [
        {"appId": "wx_someone_else"},
        {"signType": "MD5"},
        {"paySign": ""},
        {"package": "prepay_id=wx_unknown"},
        {"timeStamp": "now"},
    ],
    ids=["appId", "signType", "paySign", "package", "timeStamp"],
)
async def test_the_wechat_client_refuses_pay_page_parameters_that_are_not_right(
    rig: Rig, changes: dict[str, str]
) -> None:
    params = rig.pay.jsapi_params(await rig.jsapi_order(NO))
    with pytest.raises(PaymentRefused) as e:
        rig.platform.check_js_pay(params | changes)
    assert e.value.reason in (SIGNATURE_FAILED, PREPAY_EXPIRED)


async def test_a_replaced_code_url_can_no_longer_be_paid(rig: Rig) -> None:
    place: dict[str, Any] = {
        "out_trade_no": NO,
        "description": "Key",
        "total": 500,
        "time_expire": rig.clock.at(600),
    }
    old = await rig.pay.native_prepay(**place)
    new = await rig.pay.native_prepay(**place)
    with pytest.raises(PaymentRefused, match=CODE_EXPIRED):
        await rig.platform.pay_native(old, openid=BUYER)
    await rig.platform.pay_native(new, openid=BUYER)


async def test_on_paid_hears_each_payer() -> None:
    from tests.wechatpay_rig import running_rig

    payers: list[str] = []
    async with running_rig(on_paid=payers.append) as rig:
        await rig.jsapi_order(NO)
        await rig.platform.pay(NO, openid=BUYER)
    assert payers == [BUYER]
