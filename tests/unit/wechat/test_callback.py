"""The callback: WeChat's server check, signatures and the three encryption modes, exactly-once pushes."""

from __future__ import annotations

import asyncio
import time

import pytest
import xmltodict
from aiohttp import web
from sqlalchemy import func, select

from core import tables as t
from core.services import Services
from tests.conftest import query
from tests.unit.wechat.conftest import COMPATIBLE, PLAIN, SAFE, TOKEN, Account, reply_text, sign


async def test_the_server_check_echoes_echostr_only_when_signed_with_our_token(account: Account) -> None:
    ts, nonce = str(int(time.time())), "abc"
    good = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "4321"}
    resp = await account.client.get("/wechat", params=good)
    assert (resp.status, await resp.text()) == (200, "4321")
    forged = good | {"signature": sign("other-token", ts, nonce)}
    resp = await account.client.get("/wechat", params=forged)
    assert resp.status == 403 and "4321" not in await resp.text()


@pytest.mark.parametrize("mode", [PLAIN, COMPATIBLE, SAFE])
async def test_a_push_is_answered_in_each_mode_and_encrypted_back_when_it_came_encrypted(
    account: Account, mode: str
) -> None:
    account.mode = mode
    status, raw = await account.post(account.text("o-buyer", "help"))
    assert status == 200
    assert "商品 / catalog" in reply_text(raw)


async def test_an_encrypted_reply_is_sealed_with_our_key(account: Account) -> None:
    account.mode = SAFE
    xml = account.text("o-buyer", "帮助")
    ts, nonce = str(int(time.time())), "n0nce"
    sealed = xmltodict.parse(account.crypto.encrypt_message(xml, nonce, ts))["xml"]
    resp = await account.client.post(
        "/wechat",
        params={
            "timestamp": ts,
            "nonce": nonce,
            "signature": sign(TOKEN, ts, nonce),
            "encrypt_type": "aes",
            "msg_signature": sealed["MsgSignature"],
        },
        data=xmltodict.unparse({"xml": {"Encrypt": sealed["Encrypt"]}}, full_document=False).encode(),
    )
    body = await resp.text()
    assert "<Encrypt>" in body and "帮助" not in body and "Content" not in body


@pytest.mark.parametrize("mode", [PLAIN, SAFE])
async def test_a_forged_signature_gets_403_and_changes_nothing(
    account: Account, shop: Services, mode: str
) -> None:
    account.mode = mode
    status, _ = await account.post(account.text("o-forger", "catalog"), signature="0" * 40)
    assert status == 403
    assert await shop.users.find("wechat", "o-forger") is None


async def test_a_forged_msg_signature_gets_403(account: Account, shop: Services) -> None:
    account.mode = SAFE
    xml = account.text("o-forger", "catalog")
    ts, nonce = str(int(time.time())), "n0nce"
    sealed = xmltodict.parse(account.crypto.encrypt_message(xml, nonce, ts))["xml"]
    resp = await account.client.post(
        "/wechat",
        params={
            "timestamp": ts,
            "nonce": nonce,
            "signature": sign(TOKEN, ts, nonce),
            "encrypt_type": "aes",
            "msg_signature": "f" * 40,
        },
        data=xmltodict.unparse({"xml": {"Encrypt": sealed["Encrypt"]}}, full_document=False).encode(),
    )
    assert resp.status == 403
    assert await shop.users.find("wechat", "o-forger") is None


@pytest.mark.parametrize("body", ["not xml at all", "<xml><MsgType>text</MsgType>", "<other/>", ""])
async def test_a_malformed_push_gets_400_without_a_traceback(
    account: Account, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    ts, nonce = str(int(time.time())), "n0nce"
    resp = await account.client.post(
        "/wechat", params={"timestamp": ts, "nonce": nonce, "signature": sign(TOKEN, ts, nonce)}, data=body
    )
    assert resp.status == 400
    assert "Traceback" not in await resp.text() and not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("mode", [PLAIN, SAFE])
async def test_the_same_msgid_twice_is_answered_once_and_makes_one_user(
    account: Account, shop: Services, mode: str
) -> None:
    account.mode = mode
    xml = account.text("o-retried", "catalog", msg_id=424242)
    first = await account.post(xml)
    again = await account.post(xml)
    assert first[0] == 200 and "<xml>" in first[1]
    assert again == (200, "success")
    users = await query(
        shop, select(func.count()).select_from(t.users).where(t.users.c.external_id == "o-retried")
    )
    assert users[0][0] == 1


async def test_a_retried_event_is_answered_once_but_the_same_event_later_is_new(account: Account) -> None:
    first = await account.post(account.event("o-fan", "subscribe", at=1_790_000_100))
    again = await account.post(account.event("o-fan", "subscribe", at=1_790_000_100))
    later = await account.post(account.event("o-fan", "subscribe", at=1_790_000_200))
    assert "<xml>" in first[1] and again == (200, "success") and "<xml>" in later[1]


async def test_the_webhook_server_serves_wechat_only_when_an_app_id_and_a_token_are_set(
    shop: Services,
) -> None:
    from bot.app import mount_wechat
    from bot.settings import load_settings

    app = web.Application()
    assert not mount_wechat(app, shop, load_settings(_env_file=None))
    settings = load_settings(_env_file=None, wechat_app_id="wx0123456789abcdef", wechat_token=TOKEN)
    assert mount_wechat(app, shop, settings)
    assert {r.resource.canonical for r in app.router.routes() if r.resource} == {"/wechat"}


async def test_an_answer_not_ready_in_time_is_answered_success_and_goes_out_through_the_outbox(
    shop: Services,
) -> None:
    from typing import Any

    from aiohttp.test_utils import TestClient, TestServer

    from bot.i18n import compile_catalogs
    from handlers.wechat import WechatConfig
    from handlers.wechat.callback import WechatCallback
    from handlers.wechat.dialogue import Dialogue
    from handlers.wechat.texts import Texts
    from tests.unit.wechat.conftest import APP_ID

    release = asyncio.Event()

    class Stuck(Dialogue):
        async def answer(self, msg: Any) -> str | None:
            await self.services.users.ensure("wechat", str(msg.source))
            await release.wait()  # a slow database: the answer comes after WeChat stopped waiting
            return "late"

    config = WechatConfig(APP_ID, TOKEN, None, compile_catalogs(), reply_within=0.05)
    callback = WechatCallback(shop, config, Stuck(shop, Texts(config.locale_dir)))
    app = web.Application()
    app.router.add_post("/wechat", callback.push)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        account = Account(client)
        assert await account.post(account.text("o-slow", "catalog")) == (200, "success")
        assert await query(shop, select(t.outbox.c.kind)) == []
        release.set()
        await asyncio.wait_for(callback.settle(), 5)
    finally:
        await client.close()
    o = t.outbox
    rows = await query(shop, select(o.c.kind, o.c.payload, o.c.status))
    assert [(r.kind, r.payload, r.status) for r in rows] == [("chat_reply", {"text": "late"}, "pending")]
