"""What the WeChat Pay end-to-end tests share: a shop serving only the WeChat channel between the two
emulators (``bot.wechat_sandbox``), a product with keys, and a buyer ordering it in the chat the way a
person does (商品, a number, 买 N) up to the pay link."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.i18n import compile_catalogs
from bot.wechat_sandbox import WechatSandbox, start_wechat_sandbox
from core.context import Context, ShopConfig
from core.db import Database
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from tests.conftest import make_db

BUYER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
STRANGER = "o6_bmjrPTlm6_2sgVt7hMZstrange"
PAY_LINK = re.compile(r"http://127\.0\.0\.1:\d+/wechat/pay/([A-Z2-7]{16})")


@asynccontextmanager
async def wechat_shop(tmp_path: Path, mode: str = "safe") -> AsyncIterator[WechatSandbox]:
    """A fresh shop on SQLite with its WeChat channel in ``mode`` (plain, compat or safe)."""
    db: Database = await make_db("sqlite", tmp_path)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY")))
    sandbox = await start_wechat_sandbox(services, compile_catalogs(), mode=mode)
    try:
        yield sandbox
    finally:
        await sandbox.close()
        await db.dispose()


async def new_product(services: Services, keys: int = 3, price: int = 1990) -> int:
    pid = await services.catalog.add_product(ProductDraft(name="腾讯视频 VIP 月卡", price=price, max_qty=5))
    data = "\n".join(f"TX-VIP-{i:04d}" for i in range(keys)).encode()
    await services.stock.import_keys(pid, io.BytesIO(data), actor="test")
    return pid


async def order_in_chat(wx: WechatSandbox, openid: str = BUYER, qty: int = 1) -> str:
    """The buyer (following the account) picks the first product and asks for ``qty``: the reference in
    the pay link."""
    if not wx.emu.user(openid).subscribed:
        await wx.emu.subscribe(openid)
    await wx.emu.send_text(openid, "商品")
    await wx.emu.send_text(openid, "1")
    push = await wx.emu.send_text(openid, f"买 {qty}")
    found = PAY_LINK.search(wx.emu.texts(openid)[-1])
    assert found, (push, wx.emu.texts(openid)[-1])
    return found.group(1)
