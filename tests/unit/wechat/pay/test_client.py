"""The WeChat Pay v3 client against the emulated platform: every call signed as API v3 requires, every
answer's signature checked, errors as exceptions a caller can act on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiohttp import web

from handlers.wechat.pay import (
    OrderNotFound,
    OrderPaid,
    OutTradeNoUsed,
    WechatPay,
    WechatPayError,
    WechatPayUnavailable,
    WechatPayUnverified,
    rfc3339,
)
from sandbox.http import serve_app
from sandbox.wechatpay import PaymentRefused
from tests.wechatpay_rig import APP_ID, BUYER, MCH_ID, Rig, config, merchant_key

NO = "K20250101000001"


async def test_jsapi_prepay_places_the_order_as_given_and_answers_a_prepay_id(rig: Rig) -> None:
    prepay_id = await rig.jsapi_order(NO, 990, attach="ref:42")
    order = rig.platform.orders[NO]
    assert prepay_id in order.prepay_ids
    assert (order.trade_type, order.total, order.openid) == ("JSAPI", 990, BUYER)
    assert order.notify_url == f"{rig.shop_url}/notify"
    assert order.time_expire == rig.clock() + 1800
    assert order.description == "Steam 充值卡 ×1"  # UTF-8 unescaped, signed as sent


async def test_jsapi_params_are_what_the_wechat_client_accepts(rig: Rig) -> None:
    params = rig.pay.jsapi_params(await rig.jsapi_order(NO))
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert (params["appId"], params["signType"]) == (APP_ID, "RSA")
    assert params["package"].startswith("prepay_id=") and params["timeStamp"] == str(int(rig.clock()))
    assert rig.platform.check_js_pay(params) == NO
    await rig.platform.pay_js(params, openid=BUYER)
    assert (await rig.pay.query(NO)).trade_state == "SUCCESS"


async def test_jsapi_params_changed_after_signing_are_refused_by_the_wechat_client(rig: Rig) -> None:
    params = rig.pay.jsapi_params(await rig.jsapi_order(NO))
    nonce = params["nonceStr"]
    changed = ("y" if nonce[0] == "x" else "x") + nonce[1:]  # one character, always a different one
    with pytest.raises(PaymentRefused, match="签名"):
        rig.platform.check_js_pay(params | {"nonceStr": changed})


async def test_native_prepay_answers_a_code_url_a_scanner_pays(rig: Rig) -> None:
    code_url = await rig.pay.native_prepay(
        out_trade_no=NO, description="Key", total=500, time_expire=rig.clock.at(600)
    )
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    transaction_id = await rig.platform.pay_native(code_url, openid="o_desktop_buyer")
    [notified] = rig.shop.received
    assert notified.transaction is not None
    assert (notified.transaction.transaction_id, notified.transaction.openid) == (
        transaction_id,
        "o_desktop_buyer",
    )


async def test_query_shows_an_unpaid_order_then_its_payment(rig: Rig) -> None:
    await rig.jsapi_order(NO, 990)
    unpaid = await rig.pay.query(NO)
    assert (unpaid.trade_state, unpaid.total, unpaid.currency) == ("NOTPAY", 990, "CNY")
    assert unpaid.transaction_id is None and unpaid.openid is None and not unpaid.paid
    rig.platform.drop_next_notify()
    transaction_id = await rig.platform.pay(NO, openid=BUYER)
    paid = await rig.pay.query(NO)
    assert paid.paid and (paid.transaction_id, paid.openid, paid.payer_total) == (transaction_id, BUYER, 990)
    assert (paid.appid, paid.mchid) == (APP_ID, MCH_ID) and paid.success_time is not None


async def test_query_of_an_order_never_placed_is_order_not_found(rig: Rig) -> None:
    with pytest.raises(OrderNotFound) as e:
        await rig.pay.query("K20250101999999")
    assert (e.value.status, e.value.code) == (404, "ORDER_NOT_EXIST")


async def test_out_trade_no_with_the_characters_wechat_allows_is_one_path_segment(rig: Rig) -> None:
    await rig.jsapi_order("K2025|01*01-x_1")
    assert (await rig.pay.query("K2025|01*01-x_1")).out_trade_no == "K2025|01*01-x_1"


async def test_close_makes_an_unpaid_order_unpayable_and_closing_again_is_fine(rig: Rig) -> None:
    await rig.jsapi_order(NO)
    await rig.pay.close(NO)
    await rig.pay.close(NO)
    assert (await rig.pay.query(NO)).trade_state == "CLOSED"
    with pytest.raises(PaymentRefused):
        await rig.platform.pay(NO, openid=BUYER)


async def test_closing_a_paid_order_raises_order_paid(rig: Rig) -> None:
    await rig.jsapi_order(NO)
    await rig.platform.pay(NO, openid=BUYER)
    with pytest.raises(OrderPaid):
        await rig.pay.close(NO)


async def test_placing_an_order_again_gives_a_new_prepay_id_but_not_with_another_amount(rig: Rig) -> None:
    first = await rig.jsapi_order(NO, 990)
    again = await rig.jsapi_order(NO, 990)
    assert again != first
    with pytest.raises(OutTradeNoUsed) as e:
        await rig.jsapi_order(NO, 991)
    assert e.value.status == 403 and not e.value.retryable


async def test_a_refund_is_processing_then_notified_and_queried_as_success(rig: Rig) -> None:
    await rig.jsapi_order(NO, 990)
    transaction_id = await rig.platform.pay(NO, openid=BUYER)
    asked = await rig.pay.refund(
        out_trade_no=NO, out_refund_no="R" + NO, refund=990, total=990, reason="缺货"
    )
    assert (asked.status, asked.refund, asked.total, asked.transaction_id) == (
        "PROCESSING",
        990,
        990,
        transaction_id,
    )
    assert rig.platform.refunds["R" + NO].notify_url == f"{rig.shop_url}/refund-notify"
    await rig.platform.settle_refund("R" + NO)
    notified = rig.shop.received[-1]
    assert notified.event_type == "REFUND.SUCCESS" and notified.refund is not None
    assert (notified.refund.out_refund_no, notified.refund.status) == ("R" + NO, "SUCCESS")
    assert (await rig.pay.query_refund("R" + NO)).status == "SUCCESS"
    assert (await rig.pay.query(NO)).trade_state == "REFUND"


async def test_refunding_more_than_was_paid_is_refused(rig: Rig) -> None:
    await rig.jsapi_order(NO, 990)
    await rig.platform.pay(NO, openid=BUYER)
    await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=600, total=990)
    with pytest.raises(WechatPayError) as e:
        await rig.pay.refund(out_trade_no=NO, out_refund_no="R2", refund=391, total=990)
    assert (e.value.status, e.value.code) == (400, "INVALID_REQUEST")


async def test_asking_for_a_refund_again_with_its_number_is_the_same_refund(rig: Rig) -> None:
    await rig.jsapi_order(NO, 990)
    await rig.platform.pay(NO, openid=BUYER)
    first = await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    again = await rig.pay.refund(out_trade_no=NO, out_refund_no="R1", refund=990, total=990)
    assert again.refund_id == first.refund_id and len(rig.platform.refunds) == 1


async def test_refund_query_of_an_unknown_refund_is_not_found(rig: Rig) -> None:
    with pytest.raises(OrderNotFound):
        await rig.pay.query_refund("R-none")


@pytest.mark.parametrize("how", ["signature", "unsigned", "unknown_serial", "stale"])
async def test_an_answer_whose_signature_does_not_check_out_is_refused(rig: Rig, how: str) -> None:
    rig.platform.break_next_answer(how)
    with pytest.raises(WechatPayUnverified):
        await rig.jsapi_order(NO)
    # the call may have taken effect: the same call again is how to find out
    assert await rig.jsapi_order(NO)


async def test_a_204_answer_is_verified_too(rig: Rig) -> None:
    await rig.jsapi_order(NO)
    rig.platform.break_next_answer("signature")
    with pytest.raises(WechatPayUnverified):
        await rig.pay.close(NO)


async def test_an_answer_signed_by_a_key_we_were_not_given_is_refused(rig: Rig) -> None:
    keys = {"PUB_KEY_ID_OTHER": merchant_key().public_key()}
    other = WechatPay(config(rig.api_url, rig.shop_url, platform_keys=keys), clock=rig.clock)
    await rig.jsapi_order(NO)
    try:
        with pytest.raises(WechatPayUnverified, match="unknown Wechatpay-Serial"):
            await other.query(NO)
    finally:
        await other.close_session()


async def test_no_answer_is_unavailable_not_a_refusal() -> None:
    runner, url = await serve_app(web.Application())
    await runner.cleanup()  # nothing listens there any more
    pay = WechatPay(config(url, "https://shop.example"))
    try:
        with pytest.raises(WechatPayUnavailable):
            await pay.query(NO)
    finally:
        await pay.close_session()


async def test_a_slow_answer_is_unavailable_after_the_timeout() -> None:
    release = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    runner, url = await serve_app(app)
    pay = WechatPay(config(url, "https://shop.example"), timeout=0.2)
    try:
        with pytest.raises(WechatPayUnavailable) as e:
            await pay.query(NO)
        assert not isinstance(e.value, WechatPayUnverified)
    finally:
        release.set()
        await pay.close_session()
        await runner.cleanup()


def test_server_errors_and_rate_limits_are_retryable_others_not() -> None:
    assert WechatPayError(500, "SYSTEM_ERROR", "系统错误").retryable
    assert WechatPayError(429, "FREQUENCY_LIMITED", "频率超限").retryable
    assert not WechatPayError(400, "PARAM_ERROR", "参数错误").retryable


def test_time_expire_is_written_in_beijing_time_as_wechat_pay_shows_it() -> None:
    assert rfc3339(datetime(2025, 5, 20, 5, 29, 35, 123456, tzinfo=UTC)) == "2025-05-20T13:29:35+08:00"
    assert rfc3339(datetime(2025, 5, 20, 13, 29, 35, tzinfo=timezone(timedelta(hours=8)))) == (
        "2025-05-20T13:29:35+08:00"
    )
    with pytest.raises(ValueError, match="time zone"):
        rfc3339(datetime(2025, 5, 20, 13, 29, 35))


@pytest.mark.parametrize("total", [0, -1, 9.9, True])
async def test_amounts_are_positive_whole_fen(rig: Rig, total: object) -> None:
    with pytest.raises(ValueError, match="fen"):
        await rig.jsapi_order(NO, total)  # type: ignore[arg-type]
    assert rig.platform.requests == []
