"""The emulated merchant API's rules, by raw HTTP requests signed (or not) here: who may call, what an order
may be, and that answers are signed as WeChat Pay signs them (errors unsigned)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from sandbox.wechatpay import crypto
from tests.wechatpay_rig import APP_ID, BUYER, MCH_ID, SERIAL, Rig, merchant_key, platform_key

NO = "K20250101000001"


def order(rig: Rig, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appid": APP_ID,
        "mchid": MCH_ID,
        "description": "Key",
        "out_trade_no": NO,
        "time_expire": rig.platform.rfc3339(rig.clock() + 1800),
        "notify_url": f"{rig.shop_url}/notify",
        "amount": {"total": 990, "currency": "CNY"},
        "payer": {"openid": BUYER},
    }
    return body | changes


async def call(
    rig: Rig,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: RSAPrivateKey | None = None,
    mchid: str = MCH_ID,
    serial: str = SERIAL,
    timestamp: int | None = None,
    signed_path: str | None = None,
    signed_body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str], bytes]:
    """One request, signed as API v3 says unless told to sign something else; (status, JSON, headers,
    body)."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    stamp = int(rig.clock()) if timestamp is None else timestamp
    nonce = crypto.random_text(32)
    message = f"{method}\n{signed_path or path}\n{stamp}\n{nonce}\n".encode()
    signature = crypto.sign(
        key or merchant_key(), message + (raw if signed_body is None else signed_body) + b"\n"
    )
    authorization = (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{stamp}",serial_no="{serial}"'
    )
    sent = {"Authorization": authorization, "Accept": "application/json", "User-Agent": "test"}
    sent |= {"Content-Type": "application/json"} if body is not None else {}
    sent |= headers or {}
    left_out = [k for k, v in sent.items() if not v]  # nor aiohttp's defaults for them
    sent = {k: v for k, v in sent.items() if v}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, rig.api_url + path, data=raw or None, headers=sent, skip_auto_headers=left_out
        ) as resp,
    ):
        text = await resp.read()
        return resp.status, (json.loads(text) if text else {}), dict(resp.headers), text


JSAPI = "/v3/pay/transactions/jsapi"


async def test_a_well_signed_order_is_placed_and_the_answer_signed_by_the_platform(rig: Rig) -> None:
    status, answer, headers, raw = await call(rig, "POST", JSAPI, order(rig))
    assert status == 200 and answer["prepay_id"].startswith("wx")
    assert headers["Wechatpay-Serial"] == rig.platform.public_key_id
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    signed = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + raw + b"\n"
    assert crypto.verify(platform_key().public_key(), signed, headers["Wechatpay-Signature"])


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ({"headers": {"Authorization": ""}}, "格式错误"),
        ({"headers": {"Authorization": "Bearer abc"}}, "格式错误"),
        ({"key": platform_key()}, "签名错误"),
        ({"mchid": "1900000000"}, "商户号"),
        ({"serial": "0000000000000000000000000000000000000000"}, "证书序列号"),
        ({"timestamp": 1_790_000_000 - 301}, "5分钟"),
        ({"signed_body": b"{}"}, "签名错误"),
    ],
    ids=["missing", "other-scheme", "other-key", "other-merchant", "other-serial", "stale", "body-changed"],
)
async def test_a_request_not_provably_the_merchants_is_401_sign_error(
    rig: Rig, how: dict[str, Any], message: str
) -> None:
    status, answer, headers, _ = await call(rig, "POST", JSAPI, order(rig), **how)
    assert (status, answer["code"]) == (401, "SIGN_ERROR") and message in answer["message"]
    assert "Wechatpay-Signature" not in headers  # errors are unsigned, as at WeChat Pay
    assert rig.platform.orders == {}


async def test_the_query_string_is_part_of_what_is_signed(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, order(rig))
    path = f"/v3/pay/transactions/out-trade-no/{NO}?mchid={MCH_ID}"
    assert (await call(rig, "GET", path, signed_path=path.split("?")[0]))[0] == 401
    assert (await call(rig, "GET", path))[0] == 200


@pytest.mark.parametrize("header", ["Accept", "User-Agent"])
async def test_accept_and_user_agent_are_required(rig: Rig, header: str) -> None:
    status, answer, *_ = await call(rig, "POST", JSAPI, order(rig), headers={header: ""})
    assert (status, answer["code"]) == (400, "INVALID_REQUEST")


async def test_an_order_for_another_merchant_or_an_unbound_appid_is_refused(rig: Rig) -> None:
    status, answer, *_ = await call(rig, "POST", JSAPI, order(rig, mchid="1900000000"))
    assert (status, answer["code"]) == (400, "PARAM_ERROR")
    status, answer, *_ = await call(rig, "POST", JSAPI, order(rig, appid="wx_someone_else"))
    assert (status, answer["code"]) == (400, "APPID_MCHID_NOT_MATCH")


@pytest.mark.parametrize(
    "changes",
    [
        {"payer": None},
        {"amount": {"total": 9.9, "currency": "CNY"}},
        {"amount": {"total": 0}},
        {"amount": {"total": 990, "currency": "USD"}},
        {"out_trade_no": "K1"},
        {"out_trade_no": "K2025/01/01"},
        {"description": "长" * 128},
        {"time_expire": "2025-01-01 12:00:00"},
        {"time_expire": "2025-01-01T12:00:00"},
        {"notify_url": "http://shop.example/notify"},
        {"notify_url": "https://shop.example/notify?order=1"},
    ],
    ids=lambda c: next(iter(c)) + ":" + json.dumps(next(iter(c.values())), ensure_ascii=False)[:24],
)
async def test_a_malformed_order_is_a_param_error(rig: Rig, changes: dict[str, Any]) -> None:
    status, answer, *_ = await call(rig, "POST", JSAPI, order(rig, **changes))
    assert (status, answer["code"]) == (400, "PARAM_ERROR")
    assert rig.platform.orders == {}


async def test_a_body_that_is_not_json_is_a_param_error(rig: Rig) -> None:
    status, answer, *_ = await call(rig, "POST", JSAPI, b"{not json")
    assert (status, answer["code"]) == (400, "PARAM_ERROR")


async def test_the_same_out_trade_no_with_other_parameters_or_product_is_out_trade_no_used(rig: Rig) -> None:
    assert (await call(rig, "POST", JSAPI, order(rig)))[0] == 200
    native = {k: v for k, v in order(rig).items() if k != "payer"}
    for path, body in [(JSAPI, order(rig, description="Other")), ("/v3/pay/transactions/native", native)]:
        status, answer, *_ = await call(rig, "POST", path, body)
        assert (status, answer["code"]) == (403, "OUT_TRADE_NO_USED")


async def test_placing_a_paid_or_closed_order_again_is_refused(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, order(rig))
    await rig.platform.pay(NO, openid=BUYER)
    assert (await call(rig, "POST", JSAPI, order(rig)))[1]["code"] == "ORDERPAID"
    other = order(rig, out_trade_no="K20250101000002")
    await call(rig, "POST", JSAPI, other)
    close = f"/v3/pay/transactions/out-trade-no/{other['out_trade_no']}/close"
    status, _, headers, _ = await call(rig, "POST", close, {"mchid": MCH_ID})
    assert status == 204 and "Wechatpay-Signature" in headers  # signed over the empty body
    assert (await call(rig, "POST", JSAPI, other))[1]["code"] == "ORDER_CLOSED"


async def test_closing_needs_our_mchid_and_an_order_that_exists(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, order(rig))
    close = f"/v3/pay/transactions/out-trade-no/{NO}/close"
    assert (await call(rig, "POST", close, {}))[1]["code"] == "PARAM_ERROR"
    assert (await call(rig, "POST", close, {"mchid": "1900000000"}))[1]["code"] == "PARAM_ERROR"
    status, answer, *_ = await call(
        rig, "POST", "/v3/pay/transactions/out-trade-no/K20259999999999/close", {"mchid": MCH_ID}
    )
    assert (status, answer["code"]) == (404, "ORDER_NOT_EXIST")


async def test_a_query_needs_the_mchid(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, order(rig))
    status, answer, *_ = await call(rig, "GET", f"/v3/pay/transactions/out-trade-no/{NO}")
    assert (status, answer["code"]) == (400, "PARAM_ERROR")


async def test_an_unpaid_order_is_queried_as_wechat_pay_shows_it(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, order(rig))
    _, answer, *_ = await call(rig, "GET", f"/v3/pay/transactions/out-trade-no/{NO}?mchid={MCH_ID}")
    assert answer["trade_state"] == "NOTPAY" and "transaction_id" not in answer and "payer" not in answer
    assert answer["amount"] == {"total": 990, "payer_currency": "CNY"}


async def test_a_time_expire_sooner_than_a_minute_away_becomes_a_minute(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, order(rig, time_expire=rig.platform.rfc3339(rig.clock() - 3600)))
    assert rig.platform.orders[NO].time_expire == rig.clock() + 60


async def test_an_order_without_time_expire_can_be_paid_for_seven_days(rig: Rig) -> None:
    await call(rig, "POST", JSAPI, {k: v for k, v in order(rig).items() if k != "time_expire"})
    assert rig.platform.orders[NO].time_expire == rig.clock() + 7 * 86400
