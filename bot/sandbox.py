"""``keyshop sandbox``: the whole shop with no Telegram token. The Bot API emulator, the real bot and a
demo catalog run in this process; you chat with the bot in the terminal.

Type text or commands (/start, /catalog, /orders, /language, /help) to send them; a number taps that
button of the latest message with buttons; ``pay`` pays the latest invoice; ``quit`` leaves.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path

from bot.app import Storefront, make_bot
from bot.heap import settle_heap
from bot.runtime import close_shop, open_shop
from bot.settings import Settings
from sandbox.demo import seed_demo
from sandbox.telegram import Emulator, Sent, serve

log = logging.getLogger("keyshop.sandbox")
# Not a secret: the emulator in this process accepts only this token, and it reaches nothing else.
SANDBOX_TOKEN = "1000000001:SANDBOX-keyshop-local-emulator-token"  # noqa: S105
YOU = 10_001
HELP = (
    "Sandbox / 沙盒: type a message or /command to send it · a number taps that button (数字=点按钮) · "
    "'pay' pays the latest invoice (支付) · 'quit' leaves (退出)"
)


def render(sent: Sent) -> str:
    m = sent.message
    lines = ["", f"🤖 [{sent.method}]"]
    if m.get("invoice"):
        inv = m["invoice"]
        total = f"{inv['total_amount']} {inv['currency']}"
        lines.append(f"   🧾 {inv['title']}: {inv['description']}  —  {total}  (type 'pay')")
    if m.get("document"):
        lines.append(f"   📎 {m['document']['file_name']} ({m['document']['file_size']} bytes)")
    text = m.get("text") or m.get("caption") or ""
    lines += [f"   {line}" for line in text.splitlines()]
    for i, b in enumerate(sent.buttons, 1):
        lines.append(f"   [{i}] {b['text']}")
    return "\n".join(lines)


class Terminal:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.last_buttons: Sent | None = None
        self.last_invoice: Sent | None = None
        emulator.on_send.append(self._shown)

    def _shown(self, chat_id: int, sent: Sent) -> None:
        if chat_id != YOU:
            return
        if sent.buttons:
            self.last_buttons = sent
        if sent.message.get("invoice"):
            self.last_invoice = sent
        print(render(sent), flush=True)

    async def settle(self, quiet: float = 0.6, limit: float = 8.0) -> None:
        """Wait until the bot has stopped answering for a moment."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        last_change = start
        last_count = len(self.emu.messages(YOU))
        while loop.time() - start < limit:
            await asyncio.sleep(0.1)
            n = len(self.emu.messages(YOU))
            if n != last_count:
                last_count, last_change = n, loop.time()
            elif loop.time() - last_change >= quiet:
                return

    async def handle(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        if line.lower() in ("quit", "exit", "q", "退出"):
            return False
        if line.lower() in ("help", "?", "帮助"):
            print(HELP)
            return True
        if line.lower() in ("pay", "支付"):
            if self.last_invoice is None:
                print("(no invoice yet / 还没有账单)")
                return True
            result = await self.emu.pay(YOU, self.last_invoice)
            outcome = "paid / 已支付" if result["paid"] else f"not paid / 未支付: {result.get('error')}"
            print(f"💳 {outcome}")
        elif re.fullmatch(r"\d{1,2}", line):
            if self.last_buttons is None or not 1 <= int(line) <= len(self.last_buttons.buttons):
                print("(no such button / 没有这个按钮)")
                return True
            button = self.last_buttons.buttons[int(line) - 1]
            await self.emu.tap(YOU, self.last_buttons, button["callback_data"])
        else:
            await self.emu.send_text(YOU, line)
        await self.settle()
        return True


def sandbox_settings(settings: Settings, folder: str, **more: object) -> Settings:
    """A sandbox's settings: a shop of its own under ``DATA_DIR/<folder>`` (its SQLite database and vault),
    whatever the real shop's database, vault, webhook, Redis and payment provider are (the emulators stand
    in for the platforms); ``more``: other settings to change."""
    return settings.replace(
        data_dir=Path(settings.database.data_dir) / folder,
        database_url=None,
        vault_keys=None,
        webhook_url=None,
        redis_url=None,
        payment_provider_token=None,
        **more,
    )


async def run_sandbox(settings: Settings, *, language: str = "en") -> int:
    for noisy in ("aiogram.event", "aiogram.dispatcher", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sb = sandbox_settings(settings, "sandbox")
    emulator = Emulator(token=SANDBOX_TOKEN, inline_mode=True, inline_feedback=True)
    emulator.user(YOU, "You", language_code=language)
    runner, url = await serve(emulator)
    services = await open_shop(sb)
    front = Storefront.build(services, sb, make_bot(SANDBOX_TOKEN, url))
    term = Terminal(emulator)
    try:
        await seed_demo(services)
        await front.start_background()
        await front.start_polling()
        settle_heap()
        print(f"keyshop sandbox — a local Bot API at {url}, data in {sb.database.data_dir}")
        print(HELP)
        await term.handle("/start")
        loop = asyncio.get_running_loop()
        while True:
            if sys.stdin.isatty():
                print("› ", end="", flush=True)
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:  # end of input
                break
            if not await term.handle(line):
                break
    finally:
        await front.stop()
        await close_shop(services)
        await runner.cleanup()
    return 0
