"""A WeChat official account talking to the callback over HTTP: pushes built and signed with wechatpy
itself (its ``WeChatCrypto`` and the sha1 signature), in plaintext, compatible or safe mode."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient, TestServer
from wechatpy.crypto import WeChatCrypto

from bot.i18n import compile_catalogs
from core.services import Services
from handlers.wechat import WechatConfig, build_wechat_app

APP_ID = "wx0123456789abcdef"
TOKEN = "t0kenForTests"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SHOP = "gh_0123456789ab"
PLAIN, COMPATIBLE, SAFE = "plaintext", "compatible", "safe"


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


@dataclass
class Account:
    """WeChat's side: signs and posts pushes, reads (and decrypts) the passive replies."""

    client: TestClient[Any, Any]
    mode: str = PLAIN
    token: str = TOKEN
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, APP_ID))
    ids: count[int] = field(default_factory=lambda: count(10_000_000_001))
    clock: count[int] = field(default_factory=lambda: count(1_790_000_000))

    def text(self, openid: str, content: str, msg_id: int | None = None) -> str:
        return self._xml(openid, "text", Content=content, MsgId=msg_id or next(self.ids))

    def event(self, openid: str, event: str, key: str = "", at: int | None = None) -> str:
        return self._xml(openid, "event", at=at, Event=event, EventKey=key)

    def _xml(self, openid: str, kind: str, at: int | None = None, **fields: object) -> str:
        data = {"ToUserName": SHOP, "FromUserName": openid, "CreateTime": at or next(self.clock)}
        data |= {"MsgType": kind, **fields}
        return xmltodict.unparse({"xml": data}, full_document=False)

    async def post(self, xml: str, *, signature: str | None = None) -> tuple[int, str]:
        """POST a push as WeChat does in this account's mode: (status, reply's plaintext XML or body)."""
        timestamp, nonce = str(int(time.time())), "n0nce"
        params = {
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": signature or sign(self.token, timestamp, nonce),
        }
        body = xml
        if self.mode != PLAIN:
            sealed = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
            params |= {"encrypt_type": "aes", "msg_signature": sealed["MsgSignature"]}
            envelope: dict[str, object] = {"ToUserName": SHOP, "Encrypt": sealed["Encrypt"]}
            if self.mode == COMPATIBLE:  # both: the plaintext fields beside <Encrypt>
                envelope = xmltodict.parse(xml)["xml"] | envelope
            body = xmltodict.unparse({"xml": envelope}, full_document=False)
        resp = await self.client.post("/wechat", params=params, data=body.encode())
        text = await resp.text()
        if resp.status == 200 and self.mode != PLAIN and text.startswith("<xml>"):
            sealed = xmltodict.parse(text)["xml"]
            text = self.crypto.decrypt_message(
                text, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
            )
        return resp.status, text

    async def say(self, openid: str, content: str) -> str:
        """The text of the shop's passive reply to a text message."""
        status, reply = await self.post(self.text(openid, content))
        assert status == 200, reply
        return reply_text(reply)


def reply_text(reply: str) -> str:
    data = xmltodict.parse(reply)["xml"]
    assert data["MsgType"] == "text" and data["FromUserName"] == SHOP
    return str(data["Content"])


@pytest.fixture
async def account(shop: Services) -> AsyncIterator[Account]:
    config = WechatConfig(app_id=APP_ID, token=TOKEN, aes_key=AES_KEY, locale_dir=compile_catalogs())
    client: TestClient[Any, Any] = TestClient(TestServer(build_wechat_app(shop, config)))
    await client.start_server()
    try:
        yield Account(client)
    finally:
        await client.close()
