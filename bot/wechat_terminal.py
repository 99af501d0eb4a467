"""``keyshop sandbox --channel wechat``: the shop in a WeChat official account with nothing real behind it.
The WeChat and WeChat Pay emulators, the shop's WeChat application and its sender run in this process
(``bot.wechat_sandbox``); you chat as a WeChat buyer in the terminal.

You start by following the account through a demo distributor's QR code (so their commission shows).
Type text to send it (商品, 1, 买 1, 订单, 推广, english…); ``menu 1``/``menu 2``/``menu 3`` taps 商品 /
我的订单 / 推广; ``pay`` opens the latest pay link inside "WeChat" and pays it with WeChat Pay; ``keys``
opens the latest order page; ``quit`` leaves. Prices are in CNY (WeChat Pay charges in CNY only)."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from html import unescape

from bot.i18n import compile_catalogs
from bot.runtime import close_shop, open_shop
from bot.sandbox import sandbox_settings
from bot.settings import Settings
from bot.wechat_sandbox import WechatSandbox, start_wechat_sandbox
from core.models import UserIdentity
from core.services import Services
from handlers.money import format_amount
from handlers.wechat.dialogue import MENU_BUTTONS
from sandbox.demo import seed_demo
from sandbox.wechatpay import PaymentRefused

log = logging.getLogger("keyshop.sandbox")
YOU = "o_sandbox_you_0000000000000001"  # your openid in the emulator
DISTRIBUTOR = (
    "10002"  # the demo distributor: a Telegram user of the same shop (the Telegram sandbox's next id)
)
HELP = (
    "WeChat sandbox / 微信沙盒: type text to send it (商品, 1, 买 1, 订单, 推广, english) · "
    "'menu 1..3' taps the menu (菜单) · 'pay' pays the latest order (支付) · 'keys' opens the order page "
    "(卡密) · 'quit' leaves (退出)"
)
_PAY_LINK = re.compile(r"https?://\S+/pay/([A-Z2-7]{16})")
_CODE = re.compile(r"<code>(.*?)</code>")
_MESSAGE = re.compile(r'<p id="message">(.*?)</p>')


class WechatTerminal:
    def __init__(self, sandbox: WechatSandbox) -> None:
        self.sb = sandbox
        self.shown = 0  # what of YOU's chat was printed already
        self.last_order: str | None = None

    def show(self) -> None:
        """Print what arrived in your chat since last time."""
        received = self.sb.emu.received(YOU)
        for r in received[self.shown :]:
            label = {"reply": "💬", "custom": "📨", "template": "🔔"}.get(r.via, "ℹ️")
            print(f"\n{label} [{r.via}]")
            for line in r.text.splitlines():
                print(f"   {line}")
            found = _PAY_LINK.search(r.text)
            if found:
                self.last_order = found.group(1)
        self.shown = len(received)

    async def settle(self) -> None:
        """Let the sender deliver what the last step queued, then show it."""
        await self.sb.deliver()
        self.show()

    async def handle(self, line: str) -> bool:
        line = line.strip()
        low = line.lower()
        if not line:
            return True
        if low in ("quit", "exit", "q", "退出"):
            return False
        if low in ("?", "帮助?", "sandbox"):
            print(HELP)
            return True
        menu = re.fullmatch(r"(?:menu|菜单)\s*([1-9])", low)
        if menu:
            n = int(menu.group(1))
            if not 1 <= n <= len(MENU_BUTTONS):
                print("(no such menu button / 没有这个菜单)")
                return True
            await self.sb.emu.click(YOU, MENU_BUTTONS[n - 1][1])
        elif low in ("pay", "支付"):
            await self.pay()
        elif low in ("keys", "卡密"):
            await self.keys()
        else:
            await self.sb.emu.send_text(YOU, line)
        await self.settle()
        return True

    async def pay(self) -> None:
        if self.last_order is None:
            print("(no order yet: choose a product and reply 买 1 / 还没有订单)")
            return
        status, html = await self.sb.open_page(YOU, self.sb.url("pay", self.last_order))
        if "getBrandWCPayRequest" not in html:
            print(f"🌐 pay page ({status}): {_page_message(html)}")
            return
        try:
            transaction = await self.sb.pay_page(YOU, html)
        except PaymentRefused as e:
            print(f"💳 WeChat Pay refused / 微信支付拒绝: {e.reason}")
            return
        print(f"💳 paid with WeChat Pay / 已支付 (transaction {transaction})")
        await self.earnings()

    async def earnings(self) -> None:
        """What the demo distributor (whose QR code you followed) holds in commission now."""
        services = self.sb.services
        user = await services.users.find("telegram", DISTRIBUTOR)
        if user is None:
            return
        held = [b for b in await services.ledger.balances(user.id) if b.amount]
        shown = ", ".join(f"{b.kind.value} {format_amount(b.amount, b.currency, 'zh_CN')}" for b in held)
        print(f"📈 the demo distributor's commission / 推广员佣金: {shown or '0'}")

    async def keys(self) -> None:
        if self.last_order is None:
            print("(no order yet / 还没有订单)")
            return
        status, html = await self.sb.open_page(YOU, self.sb.url("order", self.last_order))
        keys = [unescape(k) for k in _CODE.findall(html)]
        if keys:
            print(f"🔑 order page / 订单页 {self.last_order}:")
            for k in keys:
                print(f"   {k}")
        else:
            print(f"🌐 order page ({status}): {_page_message(html)}")


def _page_message(html: str) -> str:
    found = _MESSAGE.search(html)
    return unescape(found.group(1)) if found else "(no message)"


async def _distributor_code(services: Services) -> str:
    """The demo distributor's referral code (a Telegram user of the same shop): their QR is ``ref:<code>``."""
    user = await services.users.stored(UserIdentity("telegram", DISTRIBUTOR, language="zh_CN"))
    return (await services.referrals.invite(user.id)).code


async def run_wechat_sandbox(settings: Settings) -> int:
    for noisy in ("aiogram.event", "aiogram.dispatcher", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sb_settings = sandbox_settings(settings, "sandbox-wechat", shop_currency="CNY")
    services = await open_shop(sb_settings)
    sandbox = await start_wechat_sandbox(services, compile_catalogs())
    term = WechatTerminal(sandbox)
    try:
        await seed_demo(services)
        code = await _distributor_code(services)
        print(
            "keyshop WeChat sandbox — the official account and WeChat Pay emulated locally, "
            f"data in {sb_settings.database.data_dir}"
        )
        print(HELP)
        print(f"(you follow the account through the demo distributor's QR code ref:{code})")
        await sandbox.emu.subscribe(YOU, scene=f"ref:{code}")
        await term.settle()
        loop = asyncio.get_running_loop()
        while True:
            if sys.stdin.isatty():
                print("› ", end="", flush=True)
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if not await term.handle(line):
                break
    finally:
        await sandbox.close()
        await close_shop(services)
    return 0
