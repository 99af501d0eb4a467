"""The WeChat official account's dialogue, end to end over HTTP: the WeChat emulator (``sandbox/wechat``)
pushes signed XML as WeChat does, in each of its three modes, to the shop's real callback
(``handlers/wechat``) served by aiohttp; the buyer follows, browses the numbered catalog, opens a card,
and gets help for anything else, in Chinese by default and in English on request. A push WeChat retries
changes nothing the second time. Payment through WeChat Pay is the next piece of issue 12."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.i18n import compile_catalogs
from core.context import Context, ShopConfig
from core.db import Database
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from handlers.wechat import WechatConfig, build_wechat_app
from sandbox.http import serve_app
from sandbox.wechat import Emulator, serve
from tests.conftest import make_db

APPID = "wx0123456789abcdef"
TOKEN = "keyshopwxtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
BUYER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


@pytest.fixture(params=["plain", "compat", "safe"])
async def wechat(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Emulator, Services]]:
    db: Database = await make_db("sqlite", tmp_path)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY")))
    config = WechatConfig(app_id=APPID, token=TOKEN, aes_key=AES_KEY, locale_dir=compile_catalogs())
    runner, shop_url = await serve_app(build_wechat_app(services, config))
    emu = Emulator(
        appid=APPID,
        token=TOKEN,
        aes_key=AES_KEY,
        mode=request.param,
        callback_url=f"{shop_url}{config.callback_path}",
    )
    emu_runner, _ = await serve(emu)
    try:
        yield emu, services
    finally:
        await emu_runner.cleanup()
        await runner.cleanup()
        await db.dispose()


async def test_a_follower_browses_the_numbered_catalog_and_opens_a_card_in_chinese_then_english(
    wechat: tuple[Emulator, Services],
) -> None:
    emu, services = wechat
    pid = await services.catalog.add_product(
        ProductDraft(name="腾讯视频 VIP <月卡>", price=1990, description="会员激活码")
    )
    await services.stock.import_keys(pid, io.BytesIO(b"VIP-1\nVIP-2\n"))
    assert await emu.verify_server()

    welcome = await emu.subscribe(BUYER)
    assert welcome.seen and not welcome.failed
    listing = (await emu.send_text(BUYER, "商品")).seen
    assert listing is not None and "1" in listing and "腾讯视频 VIP <月卡>" in listing
    card = (await emu.send_text(BUYER, "1")).seen
    assert card is not None and "腾讯视频 VIP <月卡>" in card and "19.90" in card and "会员激活码" in card
    lost = (await emu.send_text(BUYER, "随便说点什么")).seen  # unknown input: help, never silence
    assert lost is not None and "商品" in lost and "帮助" in lost

    await emu.send_text(BUYER, "english")
    listing = (await emu.send_text(BUYER, "catalog")).seen
    assert listing is not None and "腾讯视频 VIP <月卡>" in listing
    helped = (await emu.send_text(BUYER, "help")).seen
    assert helped is not None and helped.startswith("Reply with a word:") and "products on sale" in helped
    user = await services.users.find("wechat", BUYER)
    assert user is not None and user.language == "en"
    assert all(t != "该公众号暂时无法提供服务" for t in emu.texts(BUYER))


async def test_a_distributors_qr_code_attributes_a_newcomer_once_and_never_someone_known(
    wechat: tuple[Emulator, Services],
) -> None:
    emu, services = wechat
    distributor = await services.users.ensure("telegram", "424242")
    code = (await services.referrals.invite(distributor.id)).code  # the same code as their Telegram link
    newcomer, known = "o-newcomer-0000000000000000000", "o-known-000000000000000000000"

    assert (await emu.subscribe(newcomer, scene=f"ref:{code}")).seen  # welcomed as ever
    came = await services.users.find("wechat", newcomer)
    assert came is not None and came.referrer_id == distributor.id

    await emu.subscribe(known)
    await emu.send_text(known, "help")
    await emu.scan(known, f"ref:{code}")  # already a follower and a user: keeps having no referrer
    await emu.scan(newcomer, "ref:SOMEONEELSE")  # first touch only
    kept = await services.users.find("wechat", known)
    assert kept is not None and kept.referrer_id is None
    again = await services.users.find("wechat", newcomer)
    assert again is not None and again.referrer_id == distributor.id
    invite = await services.referrals.invite(distributor.id)
    assert (invite.opens, invite.starts) == (2, 1)  # two opens through the code, one newcomer


async def test_two_menu_taps_within_one_second_are_both_answered(wechat: tuple[Emulator, Services]) -> None:
    emu, _ = wechat
    await emu.subscribe(BUYER)
    first, second = await emu.click(BUYER, "orders"), await emu.click(BUYER, "catalog")
    assert first.seen is not None and "订单" in first.seen
    assert second.seen is not None and second.seen != "success" and "商品" in second.seen
    # (the same button twice in one second cannot be told from WeChat retrying the push: answered once)


async def test_a_shared_key_product_is_never_shown_sold_out(wechat: tuple[Emulator, Services]) -> None:
    from core.models import DeliveryKind

    emu, services = wechat
    pid = await services.catalog.add_product(
        ProductDraft(name="Lounge Wi-Fi", price=100, delivery_kind=DeliveryKind.SHARED, max_qty=2)
    )
    await services.stock.set_shared_key(pid, "lounge-2026")
    await emu.subscribe(BUYER)
    await emu.send_text(BUYER, "商品")
    card = (await emu.send_text(BUYER, "1")).seen
    assert card is not None and "有货" in card and "售罄" not in card and "买 N" in card
    total = (await emu.send_text(BUYER, "买 2")).seen
    assert total is not None and "2 × Lounge Wi-Fi" in total and "2.00" in total
