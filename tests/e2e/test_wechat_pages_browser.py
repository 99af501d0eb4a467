"""The WeChat pages in a real browser: Debian's headless Chromium (driven by chromium-driver) with WeChat's
user agent and a stubbed ``WeixinJSBridge``, as inside WeChat. The buyer opens the pay link (OAuth through
the emulator), the pay button is on screen and green, tapping it hands the page's signed parameters to
``getBrandWCPayRequest`` (the WeChat Pay emulator checks them and pays), the page says so and moves to the
order page, whose screenshot shows the keys. Skipped, saying why, where Chromium or its driver is missing
(``.ci/run`` installs both)."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.i18n import compile_catalogs
from bot.wechat_sandbox import WECHAT_UA, WechatSandbox, start_wechat_sandbox
from core.context import Context, ShopConfig
from core.db import Database
from core.models import OrderStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from tests.conftest import PROCESSES, make_db

BUYER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

# What WeChat's in-app browser provides, played by the test: ``invoke`` records the call and waits for the
# test (as WeChat's payment sheet waits for the buyer), then answers the page's callback.
BRIDGE = """
window.__calls = [];
window.WeixinJSBridge = {invoke: function (name, params, callback) {
  window.__calls.push({name: name, params: params});
  window.__answer = callback;
}};
"""

pytestmark = [
    PROCESSES,
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--user-agent={WECHAT_UA}")
    options.add_argument("--window-size=390,844")  # a phone
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": BRIDGE})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def wx(tmp_path: Path) -> AsyncIterator[WechatSandbox]:
    db: Database = await make_db("sqlite", tmp_path)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY")))
    sandbox = await start_wechat_sandbox(services, compile_catalogs())
    try:
        yield sandbox
    finally:
        await sandbox.close()
        await db.dispose()


def _green_share(png: bytes) -> float:
    """The share of a screenshot's pixels that are WeChat Pay's green (#07c160), give or take."""
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")[..., :3]
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    green = (abs(r - 0x07 / 255) < 0.1) & (abs(g - 0xC1 / 255) < 0.1) & (abs(b - 0x60 / 255) < 0.1)
    return float(green.mean())


async def test_a_buyer_pays_in_a_real_browser_and_sees_the_keys_on_screen(
    wx: WechatSandbox, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    pid = await wx.services.catalog.add_product(ProductDraft(name="腾讯视频 VIP 月卡", price=1990))
    await wx.services.stock.import_keys(pid, io.BytesIO(b"TX-VIP-AAAA-0001\n"), actor="test")
    await wx.emu.subscribe(BUYER)
    for text in ("商品", "1", "买 1"):
        await wx.emu.send_text(BUYER, text)
    ref = wx.emu.texts(BUYER)[-1].split("/wechat/pay/")[1][:16]
    wx.emu.browser_user = BUYER

    def open_pay_page() -> bytes:
        browser.get(wx.url("pay", ref))  # OAuth through the emulator, back with the session cookie
        button = WebDriverWait(browser, 10).until(ec.element_to_be_clickable((By.ID, "pay")))
        assert "微信支付" in button.text and "19.90" in browser.find_element(By.ID, "amount").text
        browser.save_screenshot(str(tmp_path / "pay.png"))
        shot: bytes = button.screenshot_as_png
        button.click()
        WebDriverWait(browser, 5).until(lambda d: d.execute_script("return window.__calls.length") == 1)
        return shot

    button_png = await asyncio.to_thread(open_pay_page)
    assert _green_share(button_png) > 0.5  # the pay button is on screen, in WeChat Pay's green
    call = await asyncio.to_thread(browser.execute_script, "return window.__calls[0]")
    assert call["name"] == "getBrandWCPayRequest"
    await wx.platform.pay_js(call["params"], openid=BUYER)  # WeChat checks the paySign and pays
    assert (await wx.services.orders.get(ref)).status is OrderStatus.DELIVERED

    def paid_and_on_to_the_keys() -> tuple[str, str, bytes]:
        browser.execute_script("window.__answer({err_msg: 'get_brand_wcpay_request:ok'})")
        note = WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "note").text)
        keys = WebDriverWait(browser, 10).until(ec.visibility_of_element_located((By.ID, "keys")))
        browser.save_screenshot(str(tmp_path / "keys.png"))
        return note, keys.text, keys.screenshot_as_png

    note, keys_text, keys_png = await asyncio.to_thread(paid_and_on_to_the_keys)
    assert "支付成功" in note
    assert "TX-VIP-AAAA-0001" in keys_text and len(keys_png) > 500
    assert (tmp_path / "pay.png").stat().st_size > 1000 and (tmp_path / "keys.png").stat().st_size > 1000
