"""A hostile buyer against the WeChat Pay pages and notifies, over HTTP against the real application between
the two emulators (``bot.wechat_sandbox``): someone else's order, forged or replayed sessions, markup in
product names, hostile notify bodies, notifies replayed or arriving together, money paid or refunded
twice, WeChat Pay away. Each test states the rule it holds the shop to."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from bot.i18n import compile_catalogs
from bot.wechat_sandbox import WECHAT_UA, WechatSandbox, start_wechat_sandbox
from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.errors import ShopError
from core.models import Charge, DeliveryKind, OrderStatus, Payment, PaymentStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.services.wechat_pay import CHECK_EVERY
from core.vault import Vault, new_key_spec
from handlers.wechat.paid import Merchant, WechatPayReconciler
from handlers.wechat.pay import WechatPay
from sandbox.http import serve_app
from sandbox.wechatpay import crypto
from tests.conftest import BACKENDS, in_read, make_db

BUYER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
OTHER = "o6_bmjrPTlm6_2sgVt7hMZotherOne"
_LINK = re.compile(r"http://127\.0\.0\.1:\d+/wechat/pay/([A-Z2-7]{16})")
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64)"


async def _sandbox(backend: str, tmp_path: Path) -> tuple[WechatSandbox, Database]:
    db: Database = await make_db(backend, tmp_path)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY")))
    return await start_wechat_sandbox(services, compile_catalogs(), mode="plain"), db


@pytest.fixture
async def wx(tmp_path: Path) -> AsyncIterator[WechatSandbox]:
    sandbox, db = await _sandbox("sqlite", tmp_path)
    try:
        yield sandbox
    finally:
        await sandbox.close()
        await db.dispose()


@pytest.fixture(params=BACKENDS)
async def any_wx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WechatSandbox]:
    sandbox, db = await _sandbox(request.param, tmp_path)
    try:
        yield sandbox
    finally:
        await sandbox.close()
        await db.dispose()


async def _product(
    services: Services, name: str = "腾讯视频 VIP 月卡", keys: int = 3, price: int = 1990
) -> int:
    pid = await services.catalog.add_product(ProductDraft(name=name, price=price, max_qty=5))
    data = "\n".join(f"TX-VIP-{i:04d}" for i in range(keys)).encode()
    await services.stock.import_keys(pid, io.BytesIO(data), actor="test")
    return pid


async def _order(wx: WechatSandbox, openid: str = BUYER, qty: int = 1, *, english: bool = False) -> str:
    if not wx.emu.user(openid).subscribed:
        await wx.emu.subscribe(openid)
    if english:
        await wx.emu.send_text(openid, "english")
    await wx.emu.send_text(openid, "catalog" if english else "商品")
    await wx.emu.send_text(openid, "1")
    await wx.emu.send_text(openid, f"买 {qty}")
    found = _LINK.search(wx.emu.texts(openid)[-1])
    assert found, wx.emu.texts(openid)[-1]
    return found.group(1)


def _reconciler(wx: WechatSandbox) -> WechatPayReconciler:
    return WechatPayReconciler(wx.services, wx.pay, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id))


class Browser:
    """A phone's browser that follows nothing by itself: each answer as it comes (status, headers, body)."""

    def __init__(self, wx: WechatSandbox, ua: str = WECHAT_UA) -> None:
        self.wx = wx
        self.session = aiohttp.ClientSession(
            headers={"User-Agent": ua}, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def get(
        self, url: str, *, method: str = "GET", cookies: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        async with self.session.request(method, url, allow_redirects=False, cookies=cookies) as r:
            return r.status, dict(r.headers), await r.text()

    async def login(self, openid: str, url: str) -> tuple[int, dict[str, str], str]:
        """Open ``url`` as ``openid``, through OAuth at the emulator, hop by hop; the last answer."""
        self.wx.emu.browser_user = openid
        status, headers, body = await self.get(url)
        for _ in range(4):
            if status != 302:
                break
            status, headers, body = await self.get(headers["Location"])
        return status, headers, body

    def cookie(self) -> str:
        for c in self.session.cookie_jar:
            if c.key == "ks_wx":
                return c.value
        raise AssertionError("no session cookie")

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    made: list[Browser] = []
    yield made
    for b in made:
        await b.close()


def _browser(wx: WechatSandbox, made: list[Browser], ua: str = WECHAT_UA) -> Browser:
    b = Browser(wx, ua)
    made.append(b)
    return b


def _no_store(headers: dict[str, str]) -> bool:
    return "no-store" in headers.get("Cache-Control", "")


# ---------------------------------------------------------------------------------------- whose order


async def test_a_session_cookie_of_another_buyer_never_shows_the_order_or_pays_it(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    await _order(wx, OTHER)  # a buyer the shop knows, with an order of their own
    other = _browser(wx, browsers)
    status, _, page = await other.login(OTHER, wx.url("pay", ref))
    assert status == 404 and "getBrandWCPayRequest" not in page
    status, _, page = await other.get(wx.url("order", ref))
    assert status == 404 and "TX-VIP" not in page
    assert ref not in wx.platform.orders  # nothing was opened at WeChat Pay for them


@pytest.mark.parametrize(
    "forge",
    [
        lambda c, o: c.replace(c.split(".")[0], o),  # another openid under the buyer's MAC
        lambda c, o: ".".join([c.split(".")[0], str(int(c.split(".")[1]) + 86400), c.split(".")[2]]),
        lambda c, o: c[:-1] + ("A" if c[-1] != "A" else "B"),  # the MAC altered
        lambda c, o: f"{o}.99999999999.",  # no MAC
        lambda c, o: f"{o}.1.{c.split('.')[2]}",  # expired, with some MAC
        lambda c, o: f"{o}.{c.split('.')[1]}.é",  # not ASCII
        lambda c, o: "x" * 5000,
        lambda c, o: f"{o}.１２３.{c.split('.')[2]}",  # unicode digits
    ],
    ids=["other-openid", "longer-expiry", "mac-altered", "no-mac", "expired", "non-ascii", "huge", "digits"],
)
async def test_a_forged_or_altered_session_cookie_is_no_session(
    wx: WechatSandbox, browsers: list[Browser], forge: object
) -> None:
    await _product(wx.services)
    await _order(wx)
    ref = await _order(wx, OTHER)
    mine = _browser(wx, browsers)
    status, _, _ = await mine.login(BUYER, wx.url("order", ref))
    assert status == 404  # BUYER is logged in, the order is OTHER's
    forged = forge(mine.cookie(), OTHER)  # type: ignore[operator]
    attacker = _browser(wx, browsers)
    status, headers, page = await attacker.get(wx.url("pay", ref), cookies={"ks_wx": forged})
    # no session: the page asks WeChat who this is (OAuth), it shows nothing of the order
    assert status == 302 and "/connect/oauth2/authorize" in headers["Location"], (status, page[:300])
    assert _no_store(headers) and "getBrandWCPayRequest" not in page


# ---------------------------------------------------------------------------------------- OAuth


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def _code_for(wx: WechatSandbox, b: Browser, openid: str, authorize: str) -> tuple[str, str]:
    """What WeChat's OAuth hands back to the shop for ``openid`` (code and state), not yet used."""
    wx.emu.browser_user = openid
    status, headers, _ = await b.get(authorize)
    assert status == 302, status
    q = _query(headers["Location"])
    return q["code"], q["state"]


async def test_an_oauth_code_without_our_state_is_ignored_and_sets_no_session(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    b = _browser(wx, browsers)
    wx.emu.browser_user = BUYER
    code = wx.emu.oauth_code(BUYER)
    for query in (f"?code={code}", f"?code={code}&state=", f"?code={code}&state={'a' * 60}"):
        status, headers, _ = await b.get(wx.url("pay", ref) + query)
        assert status == 302 and "/connect/oauth2/authorize" in headers["Location"]
        assert "ks_wx" not in {c.key for c in b.session.cookie_jar}
    assert wx.emu.oauth_codes[code][1] != -1  # never even spent at WeChat


async def test_a_state_for_one_page_does_not_log_in_on_another(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    b = _browser(wx, browsers)
    _, headers, _ = await b.get(wx.url("order", ref))
    code, state = await _code_for(wx, b, BUYER, headers["Location"])
    status, headers, _ = await b.get(wx.url("pay", ref) + f"?code={code}&state={state}")
    assert status == 302 and "/connect/oauth2/authorize" in headers["Location"]
    assert "ks_wx" not in {c.key for c in b.session.cookie_jar}


async def test_a_spent_code_replayed_with_its_state_is_refused_cleanly(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    b = _browser(wx, browsers)
    _, headers, _ = await b.get(wx.url("pay", ref))
    code, state = await _code_for(wx, b, BUYER, headers["Location"])
    back = wx.url("pay", ref) + f"?code={code}&state={state}"
    status, _, _ = await b.get(back)
    assert status == 302  # logged in
    replay = _browser(wx, browsers)
    status, headers, page = await replay.get(back)
    assert status in (302, 502) and "getBrandWCPayRequest" not in page
    assert "ks_wx" not in {c.key for c in replay.session.cookie_jar}
    assert _no_store(headers)


async def test_a_code_for_the_attacker_planted_in_the_buyers_browser_does_not_log_the_buyer_in_as_them(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    """Login CSRF: the attacker starts OAuth for the buyer's pay page themselves, keeps WeChat's answer
    (a fresh code for the attacker, our genuine state) and has the buyer open it. The shop must not take a
    state it did not hand to this browser."""
    await _product(wx.services)
    ref = await _order(wx)
    await _order(wx, OTHER)
    attacker = _browser(wx, browsers)
    _, headers, _ = await attacker.get(wx.url("pay", ref))
    code, state = await _code_for(wx, attacker, OTHER, headers["Location"])
    buyer = _browser(wx, browsers)
    wx.emu.browser_user = BUYER
    status, headers, _ = await buyer.get(wx.url("pay", ref) + f"?code={code}&state={state}")
    assert status == 302 and "/connect/oauth2/authorize" in headers["Location"]
    status, _, page = await buyer.login(BUYER, headers["Location"])
    assert status == 200 and "getBrandWCPayRequest" in page  # the buyer, as themselves


@pytest.mark.parametrize(
    "tail",
    ["", "?redirect_uri=http://evil.example/", "?next=//evil.example", "?code=x&state=y&redirect_uri=//e"],
)
async def test_the_oauth_round_trip_only_ever_returns_to_the_shops_own_page(
    wx: WechatSandbox, browsers: list[Browser], tail: str
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    b = _browser(wx, browsers)
    status, headers, _ = await b.get(wx.url("pay", ref) + tail)
    assert status == 302 and _no_store(headers)
    location = headers["Location"]
    assert urlsplit(location).path == "/connect/oauth2/authorize"
    assert _query(location)["redirect_uri"] == wx.url("pay", ref)
    code, state = await _code_for(wx, b, BUYER, location)
    status, headers, _ = await b.get(wx.url("pay", ref) + f"?code={code}&state={state}")
    assert status == 302 and headers["Location"] == wx.url("pay", ref) and _no_store(headers)


BAD_REFS = [
    "abcdefghijklmnop",  # lower case
    "ABCDEFGHIJKLMNO",  # 15
    "ABCDEFGHIJKLMNOPQ",  # 17
    "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰ",  # full-width
    "ABCDEFGHIJKLMNO%00",
    "ABCDEFGHIJKLMN%E2%80%AE",
    "A" * 5000,
    "%2F%2Fevil.example",
    "..%2F..%2Fetc",
    "ABCDEFGHIJKLMNOP%3Cscript%3E",
    "ABCDEFGHIJKLMNOP/extra",  # the router's own 404
    "",
]


async def test_a_reference_of_the_wrong_shape_is_a_clean_uncached_not_found(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    b = _browser(wx, browsers)
    for kind in ("pay", "order"):
        for ref in BAD_REFS:
            status, headers, page = await b.get(f"{wx.shop_url}/wechat/{kind}/{ref}")
            assert status == 404 and _no_store(headers), (kind, ref[:20], status, headers)
            assert "<script" not in page.lower()


async def test_no_method_but_get_opens_an_order_at_wechat_pay(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    for ua in (WECHAT_UA, DESKTOP_UA):
        b = _browser(wx, browsers, ua)
        for method in ("HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            for kind in ("pay", "order"):
                status, headers, _ = await b.get(wx.url(kind, ref), method=method)
                assert status == 405 and _no_store(headers), (ua, method, kind, status, headers)
    assert ref not in wx.platform.orders
    assert await wx.services.wechat_pay.state(ref) is None


# ---------------------------------------------------------------------------------------- markup


HOSTILE = "</script><img src=x onerror=alert(1)>\"'&<!--\u2028\u2029\u202eGIF.exe\u200f"


def _csp(headers: dict[str, str]) -> bool:
    csp = headers.get("Content-Security-Policy", "")
    return (
        "default-src 'none'" in csp
        and "script-src 'nonce-" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )


def _scripts(page: str) -> list[str]:
    return re.findall(r"<script[^>]*>(.*?)</script>", page, re.S)


async def test_markup_in_a_product_name_and_in_keys_is_shown_as_text_on_every_page(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    pid = await wx.services.catalog.add_product(ProductDraft(name=HOSTILE, price=1990, max_qty=5))
    await wx.services.stock.import_keys(pid, io.BytesIO(b'<b>K1</b></script>\n"K2"&amp;\n'), actor="t")
    ref = await _order(wx)
    b = _browser(wx, browsers)
    desktop = _browser(wx, browsers, DESKTOP_UA)
    status, headers, native = await desktop.get(wx.url("pay", ref) + "?qr=1")
    assert status == 200 and "<svg" in native
    # a buyer in WeChat pays another order of the same product (the first is a Native QR now)
    ref = await _order(wx, OTHER)
    status, headers, page = await b.login(OTHER, wx.url("pay", ref))
    assert status == 200 and "getBrandWCPayRequest" in page
    await wx.pay_page(OTHER, page)
    _, order_headers, keys = await b.get(wx.url("order", ref))
    for html_page, h in ((native, headers), (page, headers), (keys, order_headers)):
        assert "<img" not in html_page and "onerror=alert(1)>" not in html_page
        assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;&lt;!--" in html_page
        assert _csp(h) and _no_store(h)
        for script in _scripts(html_page):
            assert "\u2028" not in script and "\u2029" not in script and "</" not in script
        # a right-to-left override in a name cannot turn the words after it round
        assert re.search(r"<bdi>[^<]*\u202e[^<]*</bdi>", html_page), html_page[:2000]
    shown = re.findall(r"<code>(.*?)</code>", keys)
    assert len(shown) == 1 and shown[0] in {html.escape(k) for k in ("<b>K1</b></script>", '"K2"&amp;')}
    status, headers, _ = await b.get(wx.url("pay", ref))  # paid: a message page
    assert _csp(headers) and _no_store(headers)


# ---------------------------------------------------------------------------------------- notifies


def _notify_url(wx: WechatSandbox, kind: str = "notify") -> str:
    return f"{wx.shop_url}/wechat/pay/{kind}"


def _envelope(
    wx: WechatSandbox, event_type: str, resource: dict[str, object]
) -> tuple[dict[str, str], bytes]:
    """A notification WeChat Pay could have sent: ``resource`` sealed with the APIv3 key, signed by the
    platform's key, fresh."""
    kind = "refund" if event_type.startswith("REFUND.") else "transaction"
    sealed = crypto.seal(wx.platform.api_v3_key, json.dumps(resource, ensure_ascii=False).encode(), kind)
    envelope = {
        "id": f"EV-{crypto.random_text(12)}",
        "create_time": wx.platform.rfc3339(wx.platform.now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {"original_type": kind, **sealed},
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    return wx.platform.sign_notify(body) | {"Content-Type": "application/json"}, body


def _transaction(
    wx: WechatSandbox, ref: str, *, total: int = 1990, state: str = "SUCCESS"
) -> dict[str, object]:
    return {
        "appid": wx.platform.appid,
        "mchid": wx.platform.mch_id,
        "out_trade_no": ref,
        "transaction_id": "4200009" + crypto.digits(21),
        "trade_type": "JSAPI",
        "trade_state": state,
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": wx.platform.rfc3339(wx.platform.now()),
        "payer": {"openid": BUYER},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }


async def _post(
    wx: WechatSandbox, headers: dict[str, str], body: object, kind: str = "notify"
) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as s, s.post(_notify_url(wx, kind), data=body, headers=headers) as r:
        return r.status, dict(r.headers), await r.text()


async def _payments(wx: WechatSandbox) -> list[Payment]:
    return await in_read(wx.services, lambda uow: uow.repo.payments.owed("wechatpay", 100))


def _no_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    assert not bad, [r.getMessage()[:300] for r in bad]


async def _dropped_payment(wx: WechatSandbox, browsers: list[Browser]) -> tuple[str, bytes]:
    """The buyer pays an order whose notify WeChat Pay lost: its reference and the notify's body."""
    ref = await _order(wx)
    status, _, page = await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    assert status == 200
    wx.platform.drop_next_notify()
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    return ref, wx.platform.notifies[-1].body


async def test_hostile_notify_bodies_are_refused_cleanly_and_change_nothing(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref, body = await _dropped_payment(wx, browsers)
    signed = wx.platform.sign_notify(body)
    cases: list[tuple[dict[str, str], object]] = [
        ({"Content-Type": "application/json"}, b"x" * (64 * 1024 + 1)),  # too large, with a length
        ({"Content-Type": "application/json"}, b"{not json"),
        (wx.platform.sign_notify(b"{not json"), b"{not json"),  # signed garbage
        (wx.platform.sign_notify(b"[1,2]"), b"[1,2]"),
        (wx.platform.sign_notify(b"\xff\xfe"), b"\xff\xfe"),
        (signed | {"Content-Type": "text/plain"}, body + b" "),  # altered after signing
        ({"Content-Type": "application/json"}, body),  # no signature at all
        ({k: v for k, v in signed.items() if k != "Wechatpay-Timestamp"}, body),
        (signed | {"Wechatpay-Timestamp": str(int(wx.platform.now()) - 3600)}, body),
    ]
    for headers, data in cases:
        status, _, answer = await _post(wx, headers, data)
        assert 400 <= status < 500, (status, answer)
        assert json.loads(answer)["code"] == "FAIL"
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    _no_errors(caplog)


async def test_a_body_streamed_without_a_length_is_read_whole_or_refused_when_too_large(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref, body = await _dropped_payment(wx, browsers)

    async def chunks(data: bytes, size: int):  # type: ignore[no-untyped-def]
        for i in range(0, len(data), size):
            yield data[i : i + size]
            await asyncio.sleep(0.01)  # each chunk its own packet

    endless = b"{" + b" " * (256 * 1024)
    status, _, _ = await _post(wx, {"Content-Type": "application/json"}, chunks(endless, 16 * 1024))
    assert status == 413
    # a genuine notify in pieces (chunked, no Content-Length): the shop reads it all and takes it
    status, _, answer = await _post(wx, wx.platform.sign_notify(body), chunks(body, 100))
    assert status in (200, 204), answer
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    _no_errors(caplog)


async def test_genuine_notifies_that_pay_for_nothing_of_ours_deliver_nothing(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    # another merchant's / AppID's transaction, sealed and signed for us
    foreign = _transaction(wx, ref) | {"mchid": "1900000000", "appid": "wx0000000000foreign"}
    status, _, _ = await _post(wx, *_envelope(wx, "TRANSACTION.SUCCESS", foreign))
    assert status == 401
    # a TRANSACTION.SUCCESS whose transaction is not paid
    status, _, _ = await _post(
        wx, *_envelope(wx, "TRANSACTION.SUCCESS", _transaction(wx, ref, state="NOTPAY"))
    )
    assert 400 <= status < 500
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    # paid, for an order the shop never had: recorded and owed back, never delivered
    stranger = _transaction(wx, "NOSUCHORDER0000000000")
    status, _, _ = await _post(wx, *_envelope(wx, "TRANSACTION.SUCCESS", stranger))
    assert status == 204
    status, _, _ = await _post(wx, *_envelope(wx, "TRANSACTION.SUCCESS", stranger))  # and again
    assert status == 204
    (owed,) = await _payments(wx)
    assert (owed.charge_id, owed.status) == (stranger["transaction_id"], PaymentStatus.REJECTED)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    _no_errors(caplog)


async def test_a_refund_notify_for_a_charge_the_shop_never_had_is_acknowledged_and_changes_nothing(
    wx: WechatSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    refund: dict[str, object] = {
        "mchid": wx.platform.mch_id,
        "out_trade_no": ref,
        "transaction_id": "4200009" + crypto.digits(21),
        "out_refund_no": "R4200009" + crypto.digits(21),
        "refund_id": "50300" + crypto.digits(24),
        "refund_status": "SUCCESS",
        "success_time": wx.platform.rfc3339(wx.platform.now()),
        "amount": {"total": 1990, "refund": 1990, "payer_total": 1990, "payer_refund": 1990},
    }
    for _ in range(2):
        status, _, answer = await _post(wx, *_envelope(wx, "REFUND.SUCCESS", refund), kind="refund-notify")
        assert status == 204, answer  # nothing to do: WeChat Pay must not retry it for a day
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING
    _no_errors(caplog)


async def test_a_refund_made_outside_the_shop_is_acknowledged_and_logged_for_the_admins(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    _, _, page = await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    # the merchant refunds it in WeChat Pay's merchant platform, not through the shop
    await wx.pay.refund(out_trade_no=ref, out_refund_no="BYHAND1", refund=1990, total=1990)
    await wx.platform.drain()
    (notice,) = [n for n in wx.platform.notifies if n.event_type.startswith("REFUND.")]
    assert notice.delivered and [a.status for a in notice.attempts] == [204]
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    assert any(r.levelno == logging.ERROR and "did not owe back" in r.getMessage() for r in caplog.records)


async def test_ten_copies_of_a_notify_arriving_together_deliver_once(
    any_wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    wx = any_wx
    await _product(wx.services)
    ref, body = await _dropped_payment(wx, browsers)
    answers = await asyncio.gather(*(_post(wx, wx.platform.sign_notify(body), body) for _ in range(10)))
    assert [status for status, _, _ in answers] == [204] * 10, [a[2] for a in answers]
    order = await wx.services.orders.get(ref)
    assert order.status is OrderStatus.DELIVERED
    payments = await in_read(wx.services, lambda uow: uow.repo.payments.for_order(order.id))
    assert [(p.provider, p.status) for p in payments] == [("wechatpay", PaymentStatus.ACCEPTED)]
    kinds = [r.kind for r in await in_read(wx.services, lambda uow: uow.repo.outbox.pending())]
    assert kinds == ["order_delivered"], kinds
    assert await wx.services.ledger.check() == []
    _no_errors(caplog)
    assert not [r for r in caplog.records if "IntegrityError" in r.getMessage() or r.exc_info]


# ---------------------------------------------------------------------------------------- money


async def _paid(wx: WechatSandbox, browsers: list[Browser], openid: str = BUYER) -> str:
    ref = await _order(wx, openid)
    _, _, page = await _browser(wx, browsers).login(openid, wx.url("pay", ref))
    await wx.pay_page(openid, page)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    return ref


async def test_a_wechat_pay_charge_is_never_recorded_as_refunded_by_hand_while_wechat_pay_refunds_it(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    """The channel pays a WeChat Pay charge back itself: an admin must not be offered (nor be able) to
    record it returned by hand, or the buyer is refunded twice."""
    await _product(wx.services)
    ref = await _paid(wx, browsers)
    await wx.services.refunds.request_refund(ref, actor="admin:1", reason="admin")
    detail = await wx.services.refunds.refunds_due(ref)
    assert [p.provider for p in detail] == ["wechatpay"]
    done = await wx.services.refunds.refund_by_hand(ref, "paid back by hand", actor="admin:1")
    assert done.payments == [] and done.order.status is OrderStatus.REFUND_DUE
    await wx.deliver()  # the sender asks WeChat Pay to refund it
    await wx.platform.drain()
    assert len(wx.platform.refunds) == 1
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    assert await wx.services.ledger.check() == []


# ---------------------------------------------------------------------------------------- WeChat Pay away


class Away:
    """A WeChat Pay that answers every call with ``status`` and ``code`` (or, ``hang``, not at all)."""

    def __init__(self, status: int = 500, code: str = "SYSTEM_ERROR", hang: bool = False) -> None:
        self.status, self.code, self.hang = status, code, hang
        self.calls = 0
        self.back: Callable[[], None] = lambda: None  # WeChat Pay back for the shop's client
        self.released = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.hang:
            await self.released.wait()  # past the client's timeout: until the test is over
        body = json.dumps({"code": self.code, "message": "系统繁忙，请稍后再试"}, ensure_ascii=False)
        return web.Response(status=self.status, text=body, content_type="application/json")


@pytest.fixture
async def away(wx: WechatSandbox) -> AsyncIterator[Away]:
    """WeChat Pay replaced by ``Away`` for the shop's client (answers, then restored)."""
    fake = Away()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner, url = await serve_app(app)
    config, timeout = wx.pay.config, wx.pay._timeout

    def back() -> None:
        wx.pay.config, wx.pay._timeout = config, timeout

    fake.back = back
    wx.pay.config = dataclasses.replace(config, api_url=url)
    wx.pay._timeout = aiohttp.ClientTimeout(total=0.3)
    try:
        yield fake
    finally:
        back()
        fake.released.set()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "code", "hang"),
    [(500, "SYSTEM_ERROR", False), (503, "", False), (429, "FREQUENCY_LIMITED", False), (200, "", True)],
    ids=["500", "503", "429", "timeout"],
)
async def test_the_pay_page_when_wechat_pay_is_away_says_so_in_the_buyers_language_and_writes_nothing(
    wx: WechatSandbox,
    away: Away,
    browsers: list[Browser],
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
    hang: bool,
) -> None:
    away.status, away.code, away.hang = status, code, hang
    await _product(wx.services)
    ref = await _order(wx, english=True)
    answer, headers, page = await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    assert answer == 502 and away.calls == 1
    assert "WeChat Pay cannot be reached right now" in page and 'lang="en"' in page
    assert _no_store(headers) and _csp(headers) and "Traceback" not in page
    assert any("prepay for order" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    _no_errors(caplog)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.PENDING


async def test_an_order_whose_prepay_never_reached_wechat_pay_is_not_asked_about_forever(
    wx: WechatSandbox, away: Away, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    status, _, _ = await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    assert status == 502
    away.back()
    clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(hours=1))
    wx.services.ctx.clock = clock
    await wx.services.orders.expire_due()
    reconciler = WechatPayReconciler(
        wx.services, wx.pay, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id)
    )
    assert await reconciler.run() == 1  # WeChat Pay never had it: nothing can be paid, it is settled
    assert await wx.services.wechat_pay.state(ref) == "closed"
    asked = len(wx.platform.requests)
    clock.advance(seconds=CHECK_EVERY.total_seconds() + 1)
    assert await reconciler.run() == 0 and len(wx.platform.requests) == asked
    _no_errors(caplog)


async def test_a_desktop_reloading_the_qr_of_an_order_paid_meanwhile_learns_it_is_paid(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref = await _order(wx, english=True)
    desktop = _browser(wx, browsers, DESKTOP_UA)
    status, _, page = await desktop.get(wx.url("pay", ref) + "?qr=1")
    assert status == 200 and "<svg" in page
    wx.platform.drop_next_notify()  # WeChat Pay's notify is lost
    code_url = wx.platform.orders[ref].code_url
    assert code_url is not None
    await wx.platform.pay_native(code_url, openid=BUYER)
    status, headers, page = await desktop.get(wx.url("pay", ref))  # WeChat Pay: ORDERPAID
    assert status == 200 and "<svg" not in page, page[-600:]
    assert "Open this link in WeChat to see your order" in page and _no_store(headers)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    _no_errors(caplog)


# ---------------------------------------------------------------------------------------- one trade per order


async def test_a_buyer_whose_order_became_a_desktop_qr_can_order_again_in_the_chat_and_pay_in_wechat(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    """WeChat Pay keeps one trade type per out_trade_no: once the link was opened in a desktop browser (a
    Native QR), the phone cannot pay that order. The page says to order again in the chat; doing so must
    give an order the phone can pay, not the same one again."""
    await _product(wx.services)
    ref = await _order(wx)
    status, _, _ = await _browser(wx, browsers, DESKTOP_UA).get(wx.url("pay", ref) + "?qr=1")
    assert status == 200 and wx.platform.orders[ref].trade_type == "NATIVE"
    phone = _browser(wx, browsers)
    status, _, page = await phone.login(BUYER, wx.url("pay", ref))
    assert status == 409 and "重新下单" in page
    again = await _order(wx)
    assert again != ref
    status, _, page = await phone.get(wx.url("pay", again))
    assert status == 200 and "getBrandWCPayRequest" in page
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(again)).status is OrderStatus.DELIVERED
    assert (await wx.services.orders.get(ref)).status is OrderStatus.CANCELLED  # its keys back on sale
    assert await wx.services.ledger.check() == []


async def test_an_order_wechat_pay_no_longer_accepts_as_it_was_opened_is_cancelled_and_the_buyer_told(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    """The product was renamed after the order was opened at WeChat Pay: placing it again with another
    description is OUT_TRADE_NO_USED, for good. The buyer is told to order again (in English), and can."""
    pid = await _product(wx.services)
    ref = await _order(wx, english=True)
    phone = _browser(wx, browsers)
    status, _, _ = await phone.login(BUYER, wx.url("pay", ref))
    assert status == 200
    await wx.services.catalog.update_product(pid, name="腾讯视频 VIP 月卡（新）", actor="admin:1")
    status, headers, page = await phone.get(wx.url("pay", ref))
    assert status == 409 and "Order again in the chat" in page and _no_store(headers)
    assert "cannot be reached" not in page
    assert (await wx.services.orders.get(ref)).status is OrderStatus.CANCELLED
    again = await _order(wx, english=True)
    status, _, page = await phone.get(wx.url("pay", again))
    assert status == 200 and "getBrandWCPayRequest" in page
    _no_errors(caplog)


async def _qr_then_again(wx: WechatSandbox, browsers: list[Browser]) -> tuple[str, str]:
    """The buyer's first order became a desktop QR; they order again in the chat and pay the new one in
    WeChat (the first is cancelled). Both references."""
    first = await _order(wx)
    status, _, _ = await _browser(wx, browsers, DESKTOP_UA).get(wx.url("pay", first) + "?qr=1")
    assert status == 200
    second = await _order(wx)
    _, _, page = await _browser(wx, browsers).login(BUYER, wx.url("pay", second))
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(second)).status is OrderStatus.DELIVERED
    assert (await wx.services.orders.get(first)).status is OrderStatus.CANCELLED
    return first, second


async def test_a_payment_for_an_order_cancelled_meanwhile_whose_stock_is_sold_goes_back_to_the_payer(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services, keys=1)
    first, _ = await _qr_then_again(wx, browsers)
    code_url = wx.platform.orders[first].code_url
    assert code_url is not None
    await wx.platform.pay_native(code_url, openid=BUYER)  # the old QR, still on the desktop
    assert (await wx.services.orders.get(first)).status is OrderStatus.REFUND_DUE
    status, _, page = await _browser(wx, browsers).login(BUYER, wx.url("pay", first))
    assert status == 200 and "正在退回" in page and "过期" not in page  # not "expired"
    await wx.deliver()  # the sender asks WeChat Pay to refund it
    await wx.platform.drain()
    assert [r.out_trade_no for r in wx.platform.refunds.values()] == [first]
    assert (await wx.services.orders.get(first)).status is OrderStatus.REFUNDED
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    assert await wx.services.ledger.check() == []
    _no_errors(caplog)


async def test_the_reconciliation_closes_the_trade_of_a_cancelled_order_without_waiting_for_its_expiry(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    first, _ = await _qr_then_again(wx, browsers)
    clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(minutes=2))  # long before it would expire
    wx.services.ctx.clock = clock
    assert await _reconciler(wx).run() >= 1
    assert wx.platform.orders[first].trade_state == "CLOSED"
    assert await wx.services.wechat_pay.state(first) == "closed"


async def test_a_buyer_asking_again_for_an_unpaid_order_of_the_last_keys_gets_its_pay_link_back(
    wx: WechatSandbox,
) -> None:
    await _product(wx.services, keys=1)
    ref = await _order(wx)
    assert await _order(wx) == ref  # the same order (its key held for it), not "taken off sale"
    await wx.emu.subscribe(OTHER)
    for text in ("商品", "1", "买 1"):
        await wx.emu.send_text(OTHER, text)
    texts = wx.emu.texts(OTHER)
    assert not any("/wechat/pay/" in t for t in texts) and any("暂时已售罄" in t for t in texts), texts


async def test_a_payment_whose_notify_comes_after_the_order_expired_is_delivered_from_stock_again(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref, body = await _dropped_payment(wx, browsers)
    wx.services.ctx.clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(hours=1))
    await wx.services.orders.expire_due()
    assert (await wx.services.orders.get(ref)).status is OrderStatus.EXPIRED
    status, _, _ = await _post(wx, wx.platform.sign_notify(body), body)  # WeChat Pay's late retry
    assert status == 204
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED
    assert await wx.services.ledger.check() == []
    _no_errors(caplog)


async def test_a_refund_asked_twice_goes_back_once(wx: WechatSandbox, browsers: list[Browser]) -> None:
    await _product(wx.services)
    ref = await _paid(wx, browsers)
    await wx.services.refunds.request_refund(ref, actor="admin:1", reason="admin")
    with pytest.raises(ShopError):
        await wx.services.refunds.request_refund(ref, actor="admin:2", reason="admin")
    await wx.deliver()
    await wx.platform.drain()
    await wx.deliver()
    assert len(wx.platform.refunds) == 1
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    assert await wx.services.ledger.check() == []


async def test_a_refund_notify_before_the_refund_apis_answer_completes_it_once(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    """WeChat Pay made the refund and notified it, but its answer to the refund call never reached the
    shop (here: not verifiable). The notify completes it; the sender's retry asks for the same refund
    (same out_refund_no), which WeChat Pay answers as made: nothing more goes back."""
    await _product(wx.services)
    ref = await _paid(wx, browsers)
    await wx.services.refunds.request_refund(ref, actor="admin:1", reason="admin")
    wx.platform.refund_delay = 0.0
    wx.platform.break_next_answer("signature")
    await wx.deliver()  # the refund call's answer is refused: the outbox retries later
    await wx.platform.drain()  # the refund settles and its notify arrives
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    outbox = await in_read(wx.services, lambda uow: uow.repo.outbox.pending())
    assert [m.kind for m in outbox] != []  # the pay-back step is still to be retried
    wx.services.ctx.clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(hours=1))
    await wx.deliver()
    assert len(wx.platform.refunds) == 1
    assert (await wx.services.orders.get(ref)).status is OrderStatus.REFUNDED
    assert await wx.services.refunds.owed_by_provider("wechatpay") == []
    assert await wx.services.ledger.check() == []


async def test_two_reconciliation_rounds_at_once_take_a_lost_payment_once(
    any_wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    wx = any_wx
    await _product(wx.services)
    ref, _ = await _dropped_payment(wx, browsers)
    wx.services.ctx.clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(minutes=5))
    rounds = await asyncio.gather(_reconciler(wx).run(), _reconciler(wx).run())
    assert sorted(rounds) == [0, 1]
    order = await wx.services.orders.get(ref)
    assert order.status is OrderStatus.DELIVERED
    payments = await in_read(wx.services, lambda uow: uow.repo.payments.for_order(order.id))
    assert len(payments) == 1 and await wx.services.wechat_pay.state(ref) == "paid"
    assert await wx.services.ledger.check() == []
    _no_errors(caplog)


async def test_the_description_wechat_pay_gets_fits_127_bytes_whatever_the_products_name(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    """WeChat Pay's ``description`` is string(127); whether it counts characters or UTF-8 bytes is not
    settled in its documentation, so a long Chinese name is cut to 127 bytes, which satisfies both."""
    await _product(wx.services, name="腾讯视频VIP会员月卡官方直充秒到账" * 3)
    ref = await _order(wx)
    status, _, _ = await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    assert status == 200
    description = wx.platform.orders[ref].description
    assert (
        len(description.encode()) <= 127
        and description.startswith("腾讯视频VIP")
        and description.endswith("…")
    )


# ---------------------------------------------------------------------------------------- time, language


async def test_time_expire_is_the_reservations_end_in_beijing_time(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    order = await wx.services.orders.get(ref)
    assert wx.platform.orders[ref].time_expire == int(order.expires_at.timestamp())
    assert wx.platform.orders[ref].params["expire"] == int(order.expires_at.timestamp())


async def test_an_english_buyer_reads_every_page_in_english(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    await _product(wx.services)
    ref = await _order(wx, english=True)
    phone = _browser(wx, browsers)
    status, _, page = await phone.login(BUYER, wx.url("pay", ref))
    assert status == 200 and 'lang="en"' in page
    for text in ("Pay for your order", "Pay with WeChat Pay", "¥19.90", f"Order {ref}", "more min"):
        assert text in page, text
    script = _scripts(page)[0]
    assert "Paid. Your keys are on their way" in script and "Open this page in WeChat to pay." in script
    status, _, unpaid = await phone.get(wx.url("order", ref))
    assert "This order is not paid yet." in unpaid
    await wx.pay_page(BUYER, page)
    status, _, keys = await phone.get(wx.url("order", ref))
    assert status == 200 and "Your keys" in keys and "Keep your keys to yourself" in keys
    status, _, paid = await phone.get(wx.url("pay", ref))
    assert "This order is paid." in paid and "See the keys" in paid
    status, _, qr = await _browser(wx, browsers, DESKTOP_UA).get(wx.url("order", ref))
    assert status == 403 and "Open this link in WeChat to see your order." in qr
    await wx.services.refunds.request_refund(ref, actor="admin:1")
    await wx.deliver()
    await wx.platform.drain()
    status, _, refunded = await phone.get(wx.url("pay", ref))
    assert "This order was refunded." in refunded
    assert all("微信" not in p and "订单" not in p for p in (unpaid, keys, paid, qr, refunded))


async def test_the_reconciliation_closing_an_order_the_buyer_pays_that_moment_takes_the_payment_next_round(
    wx: WechatSandbox, browsers: list[Browser], caplog: pytest.LogCaptureFixture
) -> None:
    await _product(wx.services)
    ref = await _order(wx)
    _, _, page = await _browser(wx, browsers).login(BUYER, wx.url("pay", ref))
    clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(hours=1))
    wx.services.ctx.clock = clock
    await wx.services.orders.expire_due()

    class PaidWhileClosing(WechatPay):
        """The buyer taps pay between the reconciliation's query (NOTPAY) and its close."""

        async def close(self, out_trade_no: str) -> None:
            wx.platform.drop_next_notify()
            await wx.pay_page(BUYER, page)
            await wx.pay.close(out_trade_no)

    paying = PaidWhileClosing(wx.pay.config)
    racing = WechatPayReconciler(wx.services, paying, Merchant(wx.pay.config.app_id, wx.pay.config.mch_id))
    try:
        assert await racing.run() == 0  # WeChat Pay refused to close a paid order: nothing settled
    finally:
        await paying.close_session()
    assert await wx.services.wechat_pay.state(ref) == "open"
    clock.advance(seconds=CHECK_EVERY.total_seconds() + 1)
    assert await _reconciler(wx).run() == 1
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED  # a late payment, stock free
    assert await wx.services.wechat_pay.state(ref) == "paid"
    _no_errors(caplog)


async def test_one_order_the_reconciliation_cannot_record_does_not_hold_up_the_others(
    wx: WechatSandbox, browsers: list[Browser], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _product(wx.services)
    first, _ = await _dropped_payment(wx, browsers)
    await _order(wx, OTHER)
    other = await _order(wx, OTHER)
    _, _, page = await _browser(wx, browsers).login(OTHER, wx.url("pay", other))
    wx.platform.drop_next_notify()
    await wx.pay_page(OTHER, page)
    receive = wx.services.payments.receive_notice

    async def database_gone_for_the_first(charge: Charge, *, raw: dict[str, Any]) -> Any:
        if charge.order_ref == first:
            raise RuntimeError("database gone")
        return await receive(charge, raw=raw)

    monkeypatch.setattr(wx.services.payments, "receive_notice", database_gone_for_the_first)
    clock = FrozenClock(wx.services.ctx.clock.now() + timedelta(minutes=5))
    wx.services.ctx.clock = clock
    assert await _reconciler(wx).run() == 1
    assert (await wx.services.orders.get(other)).status is OrderStatus.DELIVERED
    assert (await wx.services.orders.get(first)).status is OrderStatus.PENDING
    monkeypatch.undo()
    clock.advance(seconds=CHECK_EVERY.total_seconds() + 1)
    assert await _reconciler(wx).run() == 1
    assert (await wx.services.orders.get(first)).status is OrderStatus.DELIVERED


async def test_shared_key_and_hand_delivered_products_are_sold_in_wechat_too(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    """Their stock is no count of unique keys (a shared key is everyone's; an admin delivers by hand):
    the chat offers them and takes the order, as Telegram does."""
    shared = await wx.services.catalog.add_product(
        ProductDraft(name="A 通用卡密", price=990, max_qty=5, delivery_kind=DeliveryKind.SHARED)
    )
    await wx.services.stock.set_shared_key(shared, "SHARED-KEY-2026", actor="admin:1")
    await wx.services.catalog.add_product(
        ProductDraft(name="B 代充 QQ 会员", price=1990, max_qty=5, delivery_kind=DeliveryKind.MANUAL)
    )
    phone = _browser(wx, browsers)
    await wx.emu.subscribe(BUYER)
    await wx.emu.send_text(BUYER, "商品")
    for n, (kind, settled) in enumerate((("shared", OrderStatus.DELIVERED), ("manual", OrderStatus.PAID)), 1):
        await wx.emu.send_text(BUYER, str(n))
        assert "售罄" not in wx.emu.texts(BUYER)[-1] and "有货" in wx.emu.texts(BUYER)[-1], kind
        await wx.emu.send_text(BUYER, "买 2")
        found = _LINK.search(wx.emu.texts(BUYER)[-1])
        assert found, (kind, wx.emu.texts(BUYER)[-1])
        ref = found.group(1)
        _, _, page = await phone.login(BUYER, wx.url("pay", ref))
        await wx.pay_page(BUYER, page)
        assert (await wx.services.orders.get(ref)).status is settled, kind
        status, _, page = await phone.get(wx.url("order", ref))
        if kind == "shared":
            assert status == 200 and "SHARED-KEY-2026" in page
        else:  # paid, an admin delivers it: said so, with no "see the keys" link back to this very page
            assert status == 200 and "人工" in page and wx.url("order", ref) not in page
        await wx.emu.send_text(BUYER, "商品")


# ---------------------------------------------------------------------------------------- outside WeChat


async def test_a_desktop_opening_an_order_its_buyer_opened_in_wechat_is_told_to_pay_in_wechat(
    wx: WechatSandbox, browsers: list[Browser]
) -> None:
    """The buyer opened the pay page in WeChat (a JSAPI trade: WeChat Pay's one trade for the order), then
    the same link on a computer, asking for the QR or not: no QR can be made for it, and the computer is
    told to pay in WeChat, which is true, not that a QR code elsewhere is paying it. The phone still pays."""
    await _product(wx.services)
    ref = await _order(wx, english=True)
    phone = _browser(wx, browsers)
    status, _, page = await phone.login(BUYER, wx.url("pay", ref))
    assert status == 200 and "getBrandWCPayRequest" in page
    desktop = _browser(wx, browsers, DESKTOP_UA)
    for query in ("", "?qr=1"):
        status, _, told = await desktop.get(wx.url("pay", ref) + query)
        assert status == 409 and "<svg" not in told, (query, status)
        assert "Open this page in WeChat to pay." in told and "QR code" not in told, (query, told)
    assert wx.platform.orders[ref].trade_type == "JSAPI"
    await wx.pay_page(BUYER, page)
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED


async def test_the_show_qr_link_reaches_the_qr_when_the_callback_path_ends_in_a_slash(
    tmp_path: Path, browsers: list[Browser], monkeypatch: pytest.MonkeyPatch
) -> None:
    """WECHAT_CALLBACK_PATH=/wechat/ is accepted (the routes and the chat's links drop the slash): the
    desktop page's link to the QR, and the pay page's link to the order page, must not hold "//", which
    no route answers."""
    import bot.wechat_sandbox

    monkeypatch.setattr(bot.wechat_sandbox, "PATH", "/wechat/")
    wx, db = await _sandbox("sqlite", tmp_path)
    try:
        await _product(wx.services)
        ref = await _order(wx)
        pay_url = f"{wx.shop_url}/wechat/pay/{ref}"
        status, _, page = await _browser(wx, browsers, DESKTOP_UA).get(pay_url)
        found = re.search(r'<a id="show-qr" href="([^"]+)"', page)
        assert status == 200 and found, page
        link = html.unescape(found.group(1))
        assert link == pay_url + "?qr=1"
        status, _, qr = await _browser(wx, browsers, DESKTOP_UA).get(link)
        assert status == 200 and "<svg" in qr
        other = await _order(wx, OTHER)
        status, _, page = await _browser(wx, browsers).login(OTHER, f"{wx.shop_url}/wechat/pay/{other}")
        assert status == 200 and f"{wx.shop_url}/wechat/order/{other}" in page and "//order/" not in page
    finally:
        await wx.close()
        await db.dispose()


async def test_a_payer_whose_openid_no_user_can_hold_is_still_recorded_and_owed_back(
    any_wx: WechatSandbox,
) -> None:
    """WeChat Pay reports, for an order the shop never made, a payer openid longer than a user's identity
    can be (64; WeChat's are 28, WeChat Pay allows 128): the payment is recorded as owed back (with no
    payer to address it to, for the admins), not refused at every notify because no user could hold the
    payer (PostgreSQL: value too long), which left it unrecorded."""
    wx, payer = any_wx, "o" * 100
    expires = datetime.now(UTC) + timedelta(minutes=15)
    await wx.pay.jsapi_prepay(
        out_trade_no="NEVERMADE0000003", description="?", total=990, openid=payer, time_expire=expires
    )
    await wx.platform.pay("NEVERMADE0000003", openid=payer)
    (owed,) = await wx.services.refunds.owed_by_provider("wechatpay")
    assert (owed.order_ref, owed.amount, owed.reason) == ("NEVERMADE0000003", 990, "unknown_order")
    assert await wx.services.users.find("wechat", payer) is None
