"""The official account's API client against the WeChat emulator over HTTP: each call's body as WeChat wants
it, WeChat's refusals as the channel's exceptions, one retry with a token fetched again in normal mode, and
nothing that is not WeChat's answer (a timeout, an HTTP error, garbage) getting through as anything but a
``WechatApiError`` that names neither the secret nor the token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from core.services import Services
from handlers.wechat.api import SHOW_QR, TRANSPORT, WechatApi
from handlers.wechat.errors import (
    DailyQuota,
    QuotaUsed,
    TextTooLong,
    TokenRejected,
    WechatApiError,
    WindowClosed,
)
from handlers.wechat.tokens import TokenStore
from sandbox.http import serve_app
from sandbox.wechat import Emulator, serve

APP_ID = "wx0123456789abcdef"
SECRET = "s3cret-app-secret-for-the-tests-0"
FAN = "o-fan-0000000000000000000000001"
STABLE, CUSTOM = "/cgi-bin/stable_token", "/cgi-bin/message/custom/send"


def calls(emu: Emulator, path: str) -> int:
    return sum(n for (p, _), n in emu.calls.items() if p == path)


@pytest.fixture
async def emu() -> AsyncIterator[tuple[Emulator, str]]:
    e = Emulator(appid=APP_ID, secret=SECRET)
    runner, url = await serve(e)
    yield e, url
    await runner.cleanup()


@pytest.fixture
async def api(emu: tuple[Emulator, str], shop: Services) -> AsyncIterator[WechatApi]:
    client = WechatApi(APP_ID, SECRET, emu[1], TokenStore(shop.wechat_tokens, APP_ID))
    yield client
    await client.close()


def follower(emu: Emulator, window: str = "message", openid: str = FAN) -> None:
    emu.follower(openid)
    emu.open_window(openid, window)


async def test_a_text_reaches_the_buyer_and_the_token_is_fetched_once_for_many_calls(
    api: WechatApi, emu: tuple[Emulator, str]
) -> None:
    wx, _ = emu
    follower(wx, "payment")
    for i in range(3):
        await api.send_text(FAN, f"卡密 {i}")
    assert wx.texts(FAN) == ["卡密 0", "卡密 1", "卡密 2"]
    assert calls(wx, STABLE) == 1


async def test_wechats_refusals_of_a_text_are_the_channels_exceptions(
    api: WechatApi, emu: tuple[Emulator, str]
) -> None:
    wx, _ = emu
    wx.follower(FAN)
    with pytest.raises(WindowClosed):
        await api.send_text(FAN, "no window open")
    wx.open_window(FAN, "event")  # three messages within a minute after a menu tap
    for _ in range(3):
        await api.send_text(FAN, "ok")
    with pytest.raises(QuotaUsed):
        await api.send_text(FAN, "a fourth")
    wx.record_payment(FAN)
    with pytest.raises(TextTooLong):
        await api.send_text(FAN, "字" * 683)  # 2049 bytes
    wx.daily_quotas[CUSTOM] = 0
    with pytest.raises(DailyQuota):
        await api.send_text(FAN, "ok")


async def test_a_rejected_token_is_fetched_again_in_normal_mode_and_the_call_retried_once(
    api: WechatApi, emu: tuple[Emulator, str], shop: Services
) -> None:
    wx, _ = emu
    follower(wx, "payment")
    await api.send_text(FAN, "before")
    old = await shop.wechat_tokens.current(APP_ID)
    wx.expire_token()  # WeChat answers 42001 to the next call with it
    await api.send_text(FAN, "after")
    assert wx.texts(FAN) == ["before", "after"]
    assert calls(wx, STABLE) == 2 and calls(wx, CUSTOM) == 2  # (the emulator counts accepted calls)
    assert sum(wx.force_refreshes.values()) == 0  # never force_refresh
    new = await shop.wechat_tokens.current(APP_ID)
    assert old is not None and new is not None and new.token != old.token


async def test_a_token_refused_again_after_the_retry_is_raised_not_retried_for_ever(
    api: WechatApi, emu: tuple[Emulator, str]
) -> None:
    wx, _ = emu
    follower(wx, "payment")
    wx.token_ttl = 0  # every token WeChat gives is already expired
    with pytest.raises(TokenRejected):
        await api.send_text(FAN, "x")
    assert calls(wx, STABLE) == 2  # the first token and one more for the one retry
    assert wx.texts(FAN) == []


async def test_a_template_message_carries_its_fields_and_link_and_a_bad_field_is_refused(
    api: WechatApi, emu: tuple[Emulator, str]
) -> None:
    wx, _ = emu
    wx.follower(FAN)
    await api.send_template(
        FAN, "TPL-1", {"thing1": "会员即将到期", "time2": "2026-12-01"}, url="https://x.cn/o"
    )
    (got,) = wx.received(FAN)
    assert got.template_id == "TPL-1" and got.url == "https://x.cn/o"
    assert got.data == {"thing1": "会员即将到期", "time2": "2026-12-01"}
    with pytest.raises(WechatApiError) as refused:
        await api.send_template(FAN, "TPL-1", {"thing1": "二十个字以上的一段很长很长很长很长的文字啊"})
    assert refused.value.errcode == 47003


async def test_the_menu_is_created_as_given(api: WechatApi, emu: tuple[Emulator, str]) -> None:
    wx, _ = emu
    menu = {"button": [{"type": "click", "name": "商品", "key": "catalog"}]}
    await api.create_menu(menu)
    assert wx.menu == menu["button"]
    with pytest.raises(WechatApiError) as refused:
        await api.create_menu({"button": []})
    assert refused.value.errcode == 40016


async def test_a_permanent_qr_code_is_a_showqrcode_link_whose_ticket_encodes_the_scene(
    api: WechatApi, emu: tuple[Emulator, str]
) -> None:
    wx, _ = emu
    url = await api.permanent_qr("ref:AbCdEfGh12")
    assert url.startswith(SHOW_QR)
    (ticket,) = parse_qs(urlsplit(url).query)["ticket"]
    assert wx.scene_of(ticket) == "ref:AbCdEfGh12"
    assert wx.qrcodes[ticket][1] is None  # permanent: no expiry
    with pytest.raises(ValueError):
        await api.permanent_qr("x" * 65)


async def test_an_oauth_code_gives_the_openid_once(api: WechatApi, emu: tuple[Emulator, str]) -> None:
    wx, _ = emu
    code = wx.oauth_code(FAN)
    assert await api.openid_from_code(code) == FAN
    with pytest.raises(WechatApiError) as used:
        await api.openid_from_code(code)
    assert used.value.errcode == 40163


async def test_a_wrong_secret_is_wechats_refusal_and_no_message_shows_it(
    emu: tuple[Emulator, str], shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    _, url = emu
    wrong = "not-the-secret-but-still-a-secret"
    client = WechatApi(APP_ID, wrong, url, TokenStore(shop.wechat_tokens, APP_ID))
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(WechatApiError) as refused:
            await client.create_menu({"button": [{"type": "click", "name": "a", "key": "b"}]})
        assert refused.value.errcode == 40125
        with pytest.raises(WechatApiError) as oauth:
            await client.openid_from_code("whatever")
        assert oauth.value.errcode == 40125
    finally:
        await client.close()
    shown = f"{refused.value} {oauth.value} {client!r} {caplog.text}"
    assert wrong not in shown and SECRET not in shown


async def test_no_log_line_carries_the_secret_or_the_token(
    api: WechatApi, emu: tuple[Emulator, str], shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    wx, _ = emu
    follower(wx, "payment")
    caplog.set_level(logging.DEBUG)
    await api.send_text(FAN, "one")
    first = await shop.wechat_tokens.current(APP_ID)
    wx.expire_token()
    await api.send_text(FAN, "two")
    second = await shop.wechat_tokens.current(APP_ID)
    assert first and first.token and second and second.token
    assert caplog.records  # the fetches and the rejection are logged…
    for secret in (SECRET, first.token, second.token):  # …without what would let someone call as the shop
        assert secret not in caplog.text


async def _broken_server(behaviour: str, release: asyncio.Event) -> tuple[web.AppRunner, str]:
    async def answer(request: web.Request) -> web.Response:
        if behaviour == "hang":
            await release.wait()  # past the client's timeout; set when the test ends
        if behaviour == "502":
            return web.Response(status=502, text="<html>Bad Gateway</html>")
        if behaviour == "html":
            return web.Response(text="<html>not json</html>")
        return web.json_response([1, 2])  # JSON, but not an object

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return await serve_app(app)


@pytest.mark.parametrize("behaviour", ["hang", "502", "html", "list"])
async def test_anything_but_wechats_json_is_a_clear_api_error_naming_the_endpoint_only(
    shop: Services, behaviour: str
) -> None:
    release = asyncio.Event()
    runner, url = await _broken_server(behaviour, release)
    client = WechatApi(APP_ID, SECRET, url, TokenStore(shop.wechat_tokens, APP_ID), timeout=0.2)
    try:
        with pytest.raises(WechatApiError) as failed:
            await client.openid_from_code("c0de")
    finally:
        release.set()
        await client.close()
        await runner.cleanup()
    message = str(failed.value)
    assert failed.value.errcode == TRANSPORT and "/sns/oauth2/access_token" in message
    assert SECRET not in message and "c0de" not in message


async def test_an_unreachable_api_is_a_clear_api_error(shop: Services) -> None:
    client = WechatApi(APP_ID, SECRET, "http://127.0.0.1:9", TokenStore(shop.wechat_tokens, APP_ID))
    try:
        with pytest.raises(WechatApiError) as failed:
            await client.send_text(FAN, "x")
    finally:
        await client.close()
    assert failed.value.errcode == TRANSPORT and "stable_token" in str(failed.value)
    assert SECRET not in str(failed.value)
