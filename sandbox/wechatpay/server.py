"""The platform as an HTTP server with api.mch.weixin.qq.com's paths, so the shop's client talks to it by
changing only the base URL. 2xx answers are signed with the platform's key (``Wechatpay-*`` headers);
error answers are not, as at WeChat Pay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.http import serve_app
from sandbox.wechatpay import crypto
from sandbox.wechatpay import errors as e
from sandbox.wechatpay.api import Answer, PayApi

Endpoint = Callable[[dict[str, str], dict[str, str], Any], Answer]
ANSWER_FAULTS = ("signature", "unsigned", "unknown_serial", "stale")
MAX_BODY = 64 * 1024


class PayPlatform(PayApi):
    """A local WeChat Pay: the merchant API with its rules, the buyer's side, notifications."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._answer_fault: str | None = None
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) of every call

    def break_next_answer(self, how: str = "signature") -> None:
        """Spoil the next 2xx answer (the call itself takes effect): ``signature`` (not the body's),
        ``unsigned`` (no Wechatpay-* headers), ``unknown_serial``, ``stale`` (a timestamp 10 minutes old)."""
        if how not in ANSWER_FAULTS:
            raise ValueError(f"how: one of {ANSWER_FAULTS}")
        self._answer_fault = how

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        routes: list[tuple[str, str, Endpoint]] = [
            ("POST", "/v3/pay/transactions/jsapi", self.prepay_jsapi),
            ("POST", "/v3/pay/transactions/native", self.prepay_native),
            ("GET", "/v3/pay/transactions/out-trade-no/{out_trade_no}", self.query_order),
            ("POST", "/v3/pay/transactions/out-trade-no/{out_trade_no}/close", self.close_order),
            ("POST", "/v3/refund/domestic/refunds", self.create_refund),
            ("GET", "/v3/refund/domestic/refunds/{out_refund_no}", self.query_refund),
        ]
        for verb, path, endpoint in routes:
            app.router.add_route(verb, path, self._handler(endpoint))
        return app

    def _handler(self, endpoint: Endpoint) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            try:
                self.authenticate(request.method, request.raw_path, request.headers, body)
                data: Any = None
                if request.method == "POST":
                    try:
                        data = json.loads(body)
                    except ValueError:
                        raise e.param("请求体不是合法的JSON") from None
                status, answer = endpoint(dict(request.match_info), dict(request.query), data)
            except e.PayError as err:
                self.requests.append((request.method, request.path, err.status))
                return web.json_response(err.body(), status=err.status, dumps=_dumps)
            self.requests.append((request.method, request.path, status))
            return self._signed(status, answer)

        return handle

    def _signed(self, status: int, answer: dict[str, Any] | None) -> web.Response:
        body = b"" if answer is None else _dumps(answer).encode()
        fault, self._answer_fault = self._answer_fault, None
        stamp = int(self.now()) - (600 if fault == "stale" else 0)
        serial = "PUB_KEY_ID_0114UNKNOWN0000000000" if fault == "unknown_serial" else self.public_key_id
        signed = body + b"!" if fault == "signature" else body
        headers = crypto.signed_headers(self.key, serial, signed, stamp)
        if fault == "unsigned":
            headers = {}
        headers["Request-ID"] = crypto.random_text(32)
        if answer is None:
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, body=body, headers=headers, content_type="application/json")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


async def serve(platform: PayPlatform, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start the platform's HTTP server; the runner (to ``cleanup()``, which also closes the notifying
    client and stops refunds settling) and its base URL (the shop's ``api_url``)."""
    app = platform.app()

    async def close_client(_: web.Application) -> None:
        await platform.close()

    app.on_cleanup.append(close_client)
    return await serve_app(app, host, port)
