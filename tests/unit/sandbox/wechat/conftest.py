"""Helpers for the WeChat emulator's suite: the emulator served over HTTP, a tiny shop callback written with
wechatpy the way the real one is, and API calls by path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import BaseMessage
from wechatpy.utils import check_signature

from sandbox.wechat import Emulator, serve

FAN = "o_fan_0001"


@dataclass
class Callback:
    """The shop's side: verifies, decrypts, parses and answers ``echo: <text>`` / ``event: <event>``.
    ``behaviour``: ``echo``, ``hang`` (never answers), ``success``, ``garbage``, ``plaintext`` (a plain reply
    whatever the mode)."""

    emu: Emulator
    token: str  # the shop's copy of the callback token
    behaviour: str = "echo"
    messages: list[BaseMessage] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    # what a hanging answer waits for: set when the test ends, so the server can shut down
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/wechat", self.verify)
        app.router.add_post("/wechat", self.push)
        return app

    async def verify(self, request: web.Request) -> web.Response:
        q = request.query
        check_signature(self.token, q["signature"], q["timestamp"], q["nonce"])
        return web.Response(text=q["echostr"])

    async def push(self, request: web.Request) -> web.Response:
        q = request.query
        check_signature(self.token, q["signature"], q["timestamp"], q["nonce"])
        body = await request.text()
        self.bodies.append(body)
        self.queries.append(dict(q))
        crypto = WeChatCrypto(self.token, self.emu.aes_key, self.emu.appid)
        encrypted = q.get("encrypt_type") == "aes"
        xml = body
        if encrypted:
            xml = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        msg = parse_message(xml)
        self.messages.append(msg)
        if self.behaviour == "hang":
            await self.release.wait()
        if self.behaviour == "success":
            return web.Response(text="success")
        if self.behaviour == "garbage":
            return web.Response(text="<html>oops</html>")
        said = f"echo: {msg.content}" if msg.type == "text" else f"event: {msg.event}"
        reply = create_reply(said, msg).render()
        if encrypted and self.behaviour != "plaintext":
            reply = crypto.encrypt_message(reply, q["nonce"], q["timestamp"])
        return web.Response(text=reply, content_type="application/xml")


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    e = Emulator(push_timeout=0.2)
    yield e
    await e.close()


@pytest.fixture
async def callback(emu: Emulator) -> AsyncIterator[Callback]:
    cb = Callback(emu, emu.token)
    runner = web.AppRunner(cb.app(), access_log=None, shutdown_timeout=0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    emu.callback_url = f"http://127.0.0.1:{port}/wechat"
    yield cb
    cb.release.set()
    await runner.cleanup()


@dataclass
class Api:
    session: aiohttp.ClientSession
    base: str
    emu: Emulator

    async def get(self, path: str, **query: Any) -> dict[str, Any]:
        async with self.session.get(self.base + path, params=query) as resp:
            assert resp.status == 200
            return dict(await resp.json())

    async def post(self, path: str, body: Any, **query: Any) -> dict[str, Any]:
        async with self.session.post(self.base + path, json=body, params=query) as resp:
            assert resp.status == 200
            return dict(await resp.json())

    async def token(self, force: bool = False) -> str:
        body = {"grant_type": "client_credential", "appid": self.emu.appid, "secret": self.emu.secret}
        answer = await self.post("/cgi-bin/stable_token", {**body, "force_refresh": force})
        return str(answer["access_token"])

    async def legacy(self) -> str:
        q = {"grant_type": "client_credential", "appid": self.emu.appid, "secret": self.emu.secret}
        return str((await self.get("/cgi-bin/token", **q))["access_token"])

    async def custom(self, token: str, openid: str, text: str) -> dict[str, Any]:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        return await self.post("/cgi-bin/message/custom/send", body, access_token=token)


@pytest.fixture
async def api(emu: Emulator) -> AsyncIterator[Api]:
    runner, base = await serve(emu)
    async with aiohttp.ClientSession() as session:
        yield Api(session, base, emu)
    await runner.cleanup()
