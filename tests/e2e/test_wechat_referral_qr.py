"""A distributor's permanent QR code, end to end over HTTP: the WeChat emulator pushes the 推广 tap to the
shop's real callback, the shop asks the emulator's API for a permanent QR code with the scene
``ref:<code>`` (the same code as the Telegram link) and answers with its link; following through it
attributes the newcomer. Each code gets one QR code for ever; while WeChat refuses, the code alone is
still the answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.i18n import compile_catalogs
from core.context import Context, ShopConfig
from core.services import Services
from core.vault import Vault, new_key_spec
from handlers.wechat import WechatConfig, build_wechat_app
from handlers.wechat.api import SHOW_QR, WechatApi
from handlers.wechat.tokens import TokenStore
from sandbox.http import serve_app
from sandbox.wechat import Emulator, serve
from tests.conftest import make_db

APPID = "wx0123456789abcdef"
SECRET = "e2e-app-secret-00000000000000000"
TOKEN = "keyshopwxtoken"
DISTRIBUTOR, NEWCOMER = "o-distributor-000000000000000", "o-newcomer-000000000000000000"
QR_CREATE = "/cgi-bin/qrcode/create"
_LINK = re.compile(re.escape(SHOW_QR) + r"\S+")


@dataclass
class Shop:
    emu: Emulator
    services: Services


def qr_creations(emu: Emulator) -> int:
    return sum(n for (p, _), n in emu.calls.items() if p == QR_CREATE)


def qr_link(text: str | None) -> str | None:
    found = _LINK.search(text or "")
    return found.group(0) if found else None


def ticket_of(link: str) -> str:
    (ticket,) = parse_qs(urlsplit(link).query)["ticket"]
    return ticket


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    db = await make_db("sqlite", tmp_path)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY")))
    emu = Emulator(appid=APPID, secret=SECRET, token=TOKEN)
    emu_runner, api_url = await serve(emu)
    api = WechatApi(APPID, SECRET, api_url, TokenStore(services.wechat_tokens, APPID))
    config = WechatConfig(app_id=APPID, token=TOKEN, aes_key=emu.aes_key, locale_dir=compile_catalogs())
    runner, shop_url = await serve_app(build_wechat_app(services, config, api))
    emu.callback_url = f"{shop_url}{config.callback_path}"
    try:
        yield Shop(emu, services)
    finally:
        await runner.cleanup()
        await api.close()
        await emu_runner.cleanup()
        await db.dispose()


async def test_invite_answers_with_a_permanent_qr_code_whose_scene_is_the_referral_code_and_it_attributes(
    shop: Shop,
) -> None:
    emu, services = shop.emu, shop.services
    await emu.subscribe(DISTRIBUTOR)
    answer = (await emu.click(DISTRIBUTOR, "invite")).seen
    distributor = await services.users.find("wechat", DISTRIBUTOR)
    assert distributor is not None
    code = (await services.referrals.invite(distributor.id)).code
    link = qr_link(answer)
    assert answer is not None and code in answer and link is not None and "二维码" in answer
    ticket = ticket_of(link)
    assert emu.scene_of(ticket) == f"ref:{code}"
    assert emu.qrcodes[ticket][1] is None  # permanent

    await emu.subscribe(NEWCOMER, scene=emu.scene_of(ticket))  # a friend scans the distributor's code
    came = await services.users.find("wechat", NEWCOMER)
    assert came is not None and came.referrer_id == distributor.id


async def test_each_referral_code_gets_one_qr_code_for_ever_in_either_language(shop: Shop) -> None:
    emu = shop.emu
    await emu.subscribe(DISTRIBUTOR)
    first = qr_link((await emu.send_text(DISTRIBUTOR, "推广")).seen)
    await emu.send_text(DISTRIBUTOR, "english")
    again = (await emu.send_text(DISTRIBUTOR, "invite")).seen
    assert first is not None and qr_link(again) == first and "QR code" in (again or "")
    assert qr_creations(emu) == 1


async def test_while_wechat_refuses_the_qr_code_the_code_alone_is_answered_and_a_later_tap_gets_it(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    emu, services = shop.emu, shop.services
    await emu.subscribe(DISTRIBUTOR)
    emu.daily_quotas[QR_CREATE] = 0  # 45009 for every qrcode/create today
    answer = (await emu.send_text(DISTRIBUTOR, "推广")).seen
    distributor = await services.users.find("wechat", DISTRIBUTOR)
    assert distributor is not None
    code = (await services.referrals.invite(distributor.id)).code
    assert answer is not None and code in answer and qr_link(answer) is None
    assert "no permanent QR code for ref:" in caplog.text
    emu.daily_quotas[QR_CREATE] = 100_000
    later = qr_link((await emu.send_text(DISTRIBUTOR, "推广")).seen)
    assert later is not None and emu.scene_of(ticket_of(later)) == f"ref:{code}"
