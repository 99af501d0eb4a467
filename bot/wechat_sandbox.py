"""The WeChat channel with nothing real behind it: the official-account emulator (``sandbox.wechat``) and
the WeChat Pay emulator (``sandbox.wechatpay``) on local ports, and the shop's real WeChat application
(``handlers.wechat.channel``) between them, talking HTTP as in production. ``keyshop sandbox --channel
wechat`` chats through it in the terminal; the e2e tests and the benchmark drive it.

``WechatSandbox.open_page`` plays the buyer's phone opening one of the shop's pages inside WeChat: the
WeChat user agent, OAuth through the emulator (which answers for ``openid``), cookies kept per buyer.
``pay_page`` then does what the page's button does: hands the page's ``getBrandWCPayRequest`` parameters
to WeChat Pay, which checks them as the WeChat client would and pays."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from core.messages import RefundDue
from core.services import Services
from core.services.outbox import OutboxMessage
from handlers.wechat.api import WechatApi
from handlers.wechat.callback import WechatCallback, WechatConfig
from handlers.wechat.channel import PayWiring, add_channel_routes
from handlers.wechat.outbox import WechatSender
from handlers.wechat.paid import Merchant, pay_back
from handlers.wechat.pay import PayConfig, WechatPay
from handlers.wechat.templates import ReminderTemplate, Templates
from handlers.wechat.texts import Texts
from handlers.wechat.tokens import TokenStore
from handlers.wechat.web.routes import PagesConfig
from sandbox.http import serve_app
from sandbox.wechat import Emulator
from sandbox.wechat import serve as serve_wechat
from sandbox.wechatpay import PayPlatform
from sandbox.wechatpay import serve as serve_pay

APP_ID = "wx5a4d0b0c0ffee000"
APP_SECRET = "sandbox-app-secret-0000000000000"  # noqa: S105 - the emulator's own, reaching nothing
TOKEN = "keyshopsandbox"  # noqa: S105
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MCH_ID = "1900000109"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
API_V3_KEY = b"sandboxApiV3Key0123456789abcdefg"
WECHAT_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50 NetType/WIFI"
PATH = "/wechat"
_PARAMS = re.compile(r"var P=(\{.*?\}),W=")


@functools.cache
def merchant_key() -> RSAPrivateKey:
    """The sandbox merchant's API key (made once per process: RSA keys are slow to make)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class WechatSandbox:
    services: Services
    emu: Emulator
    platform: PayPlatform
    api: WechatApi
    pay: WechatPay
    callback: WechatCallback
    sender: WechatSender
    shop_url: str
    _runners: list[web.AppRunner] = field(default_factory=list)
    _sending: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _browsers: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    async def deliver(self) -> int:
        """Send what the outbox holds for WeChat users now (as the running sender would); how many."""
        sent = 0
        while handled := await self.sender.send_due():
            sent += handled
        return sent

    def start_sending(self) -> None:
        """Run the sender in the background, as ``keyshop run`` does."""
        self._sending = asyncio.create_task(self.sender.run(self._stop))

    def url(self, kind: str, ref: str) -> str:
        return f"{self.shop_url}{PATH}/{kind}/{ref}"

    async def open_page(self, openid: str, url: str, *, in_wechat: bool = True) -> tuple[int, str]:
        """``openid`` opens ``url`` on their phone inside WeChat (or a desktop browser): status and HTML
        after the redirects (OAuth through the emulator, for ``openid``)."""
        browser = self._browsers.get(openid)
        if browser is None:
            headers = {"User-Agent": WECHAT_UA if in_wechat else "Mozilla/5.0 (X11; Linux x86_64)"}
            jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
            browser = self._browsers[openid] = aiohttp.ClientSession(headers=headers, cookie_jar=jar)
        self.emu.browser_user = openid
        async with browser.get(url) as r:
            return r.status, await r.text()

    async def pay_page(self, openid: str, html: str) -> str:
        """Tap the pay page's button: WeChat Pay checks the page's parameters and ``openid`` pays. Returns
        WeChat Pay's transaction id (raises ``sandbox.wechatpay.PaymentRefused`` as WeChat would show)."""
        found = _PARAMS.search(html)
        if found is None:
            raise ValueError("no pay parameters on the page")
        params = json.loads(found.group(1))
        return await self.platform.pay_js(params, openid=openid)

    async def close(self) -> None:
        if self._sending is not None:
            self._stop.set()
            self._sending.cancel()
            await asyncio.gather(self._sending, return_exceptions=True)
        for browser in self._browsers.values():
            await browser.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        await self.api.close()
        await self.pay.close_session()
        await self.platform.close()


async def start_wechat_sandbox(
    services: Services,
    locale_dir: Path,
    *,
    mode: str = "safe",
    clock: Callable[[], float] | None = None,
    emulator_options: dict[str, Any] | None = None,
    reminder_template: ReminderTemplate | None = None,
    backlog: int = 128,
) -> WechatSandbox:
    """Both emulators and the shop's WeChat application, served and wired to each other; with
    ``reminder_template`` (WECHAT_TEMPLATE_REMINDER), membership reminders outside the window go as that
    template message (the shop's listener with ``backlog``: see ``sandbox.http.serve_app``)."""
    emu = Emulator(
        appid=APP_ID, secret=APP_SECRET, token=TOKEN, aes_key=AES_KEY, mode=mode, **(emulator_options or {})
    )
    key = merchant_key()
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    # a payment opens the payer's customer-service window for 48 h, as WeChat does
    platform = PayPlatform(
        MCH_ID, APP_ID, API_V3_KEY, key.public_key(), SERIAL, on_paid=emu.record_payment, **extra
    )
    runners: list[web.AppRunner] = []
    emu_runner, emu_url = await serve_wechat(emu)
    runners.append(emu_runner)
    pay_runner, pay_url = await serve_pay(platform)
    runners.append(pay_runner)
    port = free_port()
    shop_url = f"http://127.0.0.1:{port}"
    api = WechatApi(APP_ID, APP_SECRET, emu_url, TokenStore(services.wechat_tokens, APP_ID))
    config = PayConfig(
        mch_id=MCH_ID,
        app_id=APP_ID,
        private_key=key,
        serial_no=SERIAL,
        api_v3_key=API_V3_KEY,
        platform_keys={platform.public_key_id: platform.public_key},
        api_url=pay_url,
        notify_url=f"{shop_url}{PATH}/pay/notify",
        refund_notify_url=f"{shop_url}{PATH}/pay/refund-notify",
    )
    pay = WechatPay(config, clock=clock) if clock is not None else WechatPay(config)
    paying = PayWiring(
        pay=pay,
        merchant=Merchant(APP_ID, MCH_ID),
        pages=PagesConfig(app_id=APP_ID, public_url=shop_url, base_path=PATH, oauth_url=emu_url),
        session_secret=secrets.token_hex(16),
    )
    app = web.Application()
    wx = WechatConfig(app_id=APP_ID, token=TOKEN, aes_key=AES_KEY, locale_dir=locale_dir, callback_path=PATH)
    callback = add_channel_routes(app, services, wx, api, paying)
    shop_runner, _ = await serve_app(app, port=port, backlog=backlog)
    runners.append(shop_runner)
    emu.callback_url = f"{shop_url}{PATH}"

    async def refund(m: RefundDue, _: OutboxMessage) -> None:
        await pay_back(services, pay, m)

    templates = Templates(api, reminder_template) if reminder_template is not None else None
    sender = WechatSender(
        services, api, Texts(locale_dir), f"{shop_url}{PATH}", refund, templates=templates, idle_poll=0.2
    )
    return WechatSandbox(services, emu, platform, api, pay, callback, sender, shop_url, runners)
