"""A WeChat Pay rig for tests: the emulated platform (``sandbox.wechatpay``) served over HTTP, the shop's
client (``handlers.wechat.pay``) pointed at it, and a minimal notify endpoint that verifies each
notification with the client — all on one fake clock. RSA keys are made once per run (slow to make)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from handlers.wechat.pay import Notification, NotifyRejected, PayConfig, WechatPay
from sandbox.http import serve_app
from sandbox.wechatpay import PayPlatform, serve

MCH_ID = "1900000109"
APP_ID = "wx0123456789abcdef"
SERIAL = "3775B6A45ACD588826D15E583A95F5DD4FEE1A8A"  # the merchant API certificate's serial
API_V3_KEY = b"0123456789abcdefghijklmnopqrstuv"
BUYER = "o_buyer_0000000000000000001"
T0 = 1_790_000_000.0


@functools.cache
def merchant_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def platform_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Clock:
    """Epoch seconds that move only when told: shared by the platform and the shop."""

    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def at(self, seconds_from_now: float) -> datetime:
        return datetime.fromtimestamp(self.t + seconds_from_now, UTC)


@dataclass
class Shop:
    """The shop's notify endpoints: each body goes through ``WechatPay.parse_notify``; accepted ones are
    answered 204 (or ``answer`` when set, to play a failing shop), refused ones 400; after ``delay``
    seconds (to play a slow one)."""

    pay: WechatPay | None = None
    received: list[Notification] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    answer: int | None = None
    delay: float = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/notify", self.notify)
        app.router.add_post("/refund-notify", self.notify)
        return app

    async def notify(self, request: web.Request) -> web.Response:
        assert self.pay is not None
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            notification = self.pay.parse_notify(request.headers, body)
        except NotifyRejected as e:
            self.refused.append(e.reason)
            return web.json_response({"code": "FAIL", "message": "rejected"}, status=400)
        if self.answer is not None:
            return web.Response(status=self.answer)
        self.received.append(notification)
        return web.Response(status=204)


@dataclass
class Rig:
    clock: Clock
    platform: PayPlatform
    pay: WechatPay
    shop: Shop
    api_url: str
    shop_url: str

    def advance(self, seconds: float) -> None:
        """Time passes for both sides."""
        self.clock.t += seconds

    async def jsapi_order(self, out_trade_no: str = "K20250101000001", total: int = 990, **kw: Any) -> str:
        return await self.pay.jsapi_prepay(
            out_trade_no=out_trade_no,
            description=kw.pop("description", "Steam 充值卡 ×1"),
            total=total,
            openid=kw.pop("openid", BUYER),
            time_expire=kw.pop("time_expire", self.clock.at(1800)),
            **kw,
        )


def config(api_url: str, shop_url: str, **overrides: Any) -> PayConfig:
    fields: dict[str, Any] = {
        "mch_id": MCH_ID,
        "app_id": APP_ID,
        "private_key": merchant_key(),
        "serial_no": SERIAL,
        "api_v3_key": API_V3_KEY,
        "platform_keys": {"PUB_KEY_ID_0114SANDBOX": platform_key().public_key()},
        "api_url": api_url,
        "notify_url": f"{shop_url}/notify",
        "refund_notify_url": f"{shop_url}/refund-notify",
    }
    return PayConfig(**(fields | overrides))


@asynccontextmanager
async def running_rig(**platform_options: Any) -> AsyncIterator[Rig]:
    clock = Clock()
    platform = PayPlatform(
        MCH_ID,
        APP_ID,
        API_V3_KEY,
        merchant_key().public_key(),
        SERIAL,
        clock=clock,
        private_key=platform_key(),
        public_key_id="PUB_KEY_ID_0114SANDBOX",
        **platform_options,
    )
    shop = Shop()
    shop_runner, shop_url = await serve_app(shop.app())
    platform_runner, api_url = await serve(platform)
    shop.pay = pay = WechatPay(config(api_url, shop_url), clock=clock)
    try:
        yield Rig(clock, platform, pay, shop, api_url, shop_url)
    finally:
        await pay.close_session()
        await platform_runner.cleanup()
        await shop_runner.cleanup()
