"""The emulator as an HTTP server: ``/cgi-bin/...`` and ``/sns/oauth2/access_token`` like api.weixin.qq.com,
so the shop's aiohttp client talks to it by changing only the base URL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sandbox.http import serve_app
from sandbox.wechat.api import OfficialAccountApi, Query
from sandbox.wechat.errors import WeChatError
from sandbox.wechat.players import Players

Method = Callable[[Query, Any], dict[str, Any]]


class Emulator(OfficialAccountApi, Players):
    """A local official-account platform: WeChat's API with its rules, plus users who push to the shop."""

    def app(self) -> web.Application:
        app = web.Application()
        routes: list[tuple[str, str, Method]] = [
            ("POST", "/cgi-bin/stable_token", self.stable_token),
            ("GET", "/cgi-bin/token", self.legacy_token),
            ("POST", "/cgi-bin/message/custom/send", self.custom_send),
            ("POST", "/cgi-bin/message/template/send", self.template_send),
            ("POST", "/cgi-bin/menu/create", self.menu_create),
            ("POST", "/cgi-bin/qrcode/create", self.qrcode_create),
            ("GET", "/sns/oauth2/access_token", self.oauth_access_token),
        ]
        for verb, path, method in routes:
            app.router.add_route(verb, path, _handler(method))
        app.router.add_get("/connect/oauth2/authorize", self._authorize)
        return app

    async def _authorize(self, request: web.Request) -> web.Response:
        """open.weixin.qq.com's OAuth page inside WeChat: snsapi_base is silent, so ``browser_user`` is sent
        straight back to ``redirect_uri`` with a one-use ``code`` and the ``state`` unchanged. Refused (a
        page, as WeChat shows one) for another appid or scope, or a redirect outside ``oauth_domain``."""
        q = request.query
        target = q.get("redirect_uri", "")
        host = urlsplit(target).hostname or ""
        refusal = (
            "appid"
            if q.get("appid") != self.appid
            else "scope"
            if q.get("scope") != "snsapi_base" or q.get("response_type") != "code"
            else "redirect_uri"
            if not target.startswith(("http://", "https://"))
            or (self.oauth_domain is not None and host != self.oauth_domain)
            else "not in WeChat"
            if self.browser_user is None
            else None
        )
        if refusal is not None:
            return web.Response(status=403, text=f"OAuth refused: {refusal}")
        assert self.browser_user is not None
        code = self.oauth_code(self.browser_user)
        joiner = "&" if "?" in target else "?"
        location = f"{target}{joiner}{urlencode({'code': code, 'state': q.get('state', '')})}"
        raise web.HTTPFound(location)


def _handler(method: Method) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        body: Any = None
        if request.method == "POST" and request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                return _json({"errcode": 47001, "errmsg": "data format error"})
        try:
            answer = method(request.query, body)
        except WeChatError as e:
            answer = e.body()
        return _json(answer)

    return handle


def _json(body: dict[str, Any]) -> web.Response:
    # WeChat answers errors with HTTP 200 too, and writes Chinese unescaped
    return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/json")


async def serve(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start the emulator's HTTP server; returns the runner (to ``cleanup()``, which also closes the pushing
    client) and its base URL."""
    app = emulator.app()

    async def close_client(_: web.Application) -> None:
        await emulator.close()

    app.on_cleanup.append(close_client)
    return await serve_app(app, host, port)
