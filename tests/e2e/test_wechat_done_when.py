"""Issue 12's "Done when", end to end over HTTP against one shop (one database, one ``Services``) serving
both channels at once, as ``keyshop run`` does with Telegram and WECHAT_* set: the real aiogram bot
long-polling the Bot API emulator, with an owner in ADMIN_IDS, and the WeChat channel between the WeChat
and WeChat Pay emulators with its outbox sender running.

A distributor who uses the official account taps 推广 and gets their permanent QR code (scene
``ref:<code>``, the same referral code a Telegram invite link carries); a newcomer follows through it, buys
with WeChat Pay on the pay page and gets the key in the chat; the distributor earns the commission. The
owner opens the order in Telegram and taps Refund: WeChat Pay refunds the whole payment and its notify
completes it, the order ends refunded, the commission is clawed back, the buyer is told in WeChat, and
the ledger is clean after every step.

The distributor is a WeChat follower, not a Telegram user: users are per channel and only 推广 in the
official account makes a WeChat QR code (a Telegram user gets a t.me link, which no one can follow an
official account through), so this is how a WeChat buyer realistically arrives through a distributor."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.app import Storefront, make_bot
from bot.cli import main
from bot.i18n import compile_catalogs
from bot.settings import Settings
from bot.wechat_sandbox import WechatSandbox, start_wechat_sandbox
from core.clock import ShiftedClock
from core.context import Context, ShopConfig
from core.models import AccountKind, OrderStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from handlers.wechat.api import SHOW_QR
from sandbox.telegram import Emulator, Sent, serve
from tests.conftest import make_db
from tests.e2e.conftest import TOKEN, _Errors, database_dir, without_calendar_jobs

OWNER = 900_002  # the shop's owner, in Telegram (ADMIN_IDS)
DISTRIBUTOR = "o-distributor-dora-00000000000"
BUYER = "o-buyer-finn-000000000000000000"
TG_FRIEND = 812
PRICE = 1990  # fen: 19.90 CNY
COMMISSION = 199  # level 1 earns 10 % (COMMISSION_RATES' default)
_PAY_LINK = re.compile(r"http://127\.0\.0\.1:\d+/wechat/pay/([A-Z2-7]{16})")
_QR_LINK = re.compile(re.escape(SHOW_QR) + r"\S+")


@dataclass
class BothChannels:
    tg: Emulator
    wx: WechatSandbox
    services: Services

    async def say(self, user: int, text: str) -> Sent:
        before = len(self.tg.messages(user))
        await self.tg.send_text(user, text)
        return await self.tg.wait_for(user, after=before)

    async def tap(self, user: int, sent: Sent, label: str) -> Sent:
        before = len(self.tg.messages(user))
        await self.tg.tap(user, sent, sent.button(label)["callback_data"])
        return await self.tg.wait_for(user, after=before)


@pytest.fixture(autouse=True)
def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``keyshop ledger check`` reads only the database it is given."""
    for name in ("DATABASE_URL", "VAULT_KEYS", "BOT_TOKEN", "ADMIN_IDS", "SHOP_CURRENCY", "COMMISSION_RATES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli-data"))


@pytest.fixture
async def shop(
    tmp_path: Path, request: pytest.FixtureRequest, logged_errors: _Errors
) -> AsyncIterator[BothChannels]:
    db = await make_db("sqlite", database_dir(tmp_path, request))
    config = ShopConfig(currency="CNY", owner_ids=(str(OWNER),))
    services = Services(Context(db, Vault.from_spec(new_key_spec()), config, ShiftedClock()))
    tg = Emulator(token=TOKEN)
    tg_runner, tg_url = await serve(tg)
    tg.user(OWNER, "Owen", "zh-hans")
    settings = Settings.load(_env_file=None, admin_ids=[OWNER], data_dir=tmp_path, shop_currency="CNY")
    front = without_calendar_jobs(
        Storefront.build(services, settings, make_bot(TOKEN, tg_url), sender={"private_interval": 0.05})
    )
    await front.start_background()
    await front.start_polling()
    wx = await start_wechat_sandbox(services, compile_catalogs())
    wx.start_sending()  # the WeChat outbox sender runs beside Telegram's, as in `keyshop run`
    try:
        yield BothChannels(tg, wx, services)
    finally:
        await tg.shutdown()
        await front.stop()
        await wx.close()
        await tg_runner.cleanup()
        await db.dispose()
    errors = [f"{r.name}: {r.getMessage()}" for r in logged_errors.records]
    assert not errors, f"the shop logged errors: {errors}"


async def _eventually(what: Callable[[], Any], within: float = 5.0) -> Any:
    """``what()`` (awaited when a coroutine) once it is truthy; fails after ``within`` seconds."""
    for _ in range(int(within / 0.05)):
        got = what()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened within {within} s: {what}")


def _custom(wx: WechatSandbox, openid: str) -> list[str]:
    """The customer-service (客服) messages ``openid`` got in the chat."""
    return [r.text for r in wx.emu.received(openid) if r.via == "custom"]


async def _pending_commission(services: Services, user_id: int) -> int:
    found = await services.ledger.balances(user_id)
    return sum(b.amount for b in found if b.kind is AccountKind.PENDING and b.currency == "CNY")


async def _ledger_check_is_clean(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    url = services.ctx.db.url.render_as_string(hide_password=False)
    code = await asyncio.to_thread(main, ["ledger", "check", "--database-url", url])
    out, _err = capsys.readouterr()
    assert code == 0 and out.strip().endswith("ledger clean"), out


async def test_a_buyer_follows_a_distributors_qr_pays_with_wechat_pay_and_the_owners_refund_reverses_it(
    shop: BothChannels, capsys: pytest.CaptureFixture[str]
) -> None:
    s, emu, platform = shop.services, shop.wx.emu, shop.wx.platform
    pid = await s.catalog.add_product(ProductDraft(name="腾讯视频 VIP 月卡", price=PRICE, price_stars=100))
    await s.stock.import_keys(pid, io.BytesIO(b"TX-VIP-0001\nTX-VIP-0002\n"), actor="test")

    # 1. The distributor follows the account and taps 推广: their permanent QR code, scene ref:<code>.
    await emu.subscribe(DISTRIBUTOR)
    invite = (await emu.click(DISTRIBUTOR, "invite")).seen or ""
    dist = await s.users.find("wechat", DISTRIBUTOR)
    assert dist is not None
    code = (await s.referrals.invite(dist.id)).code
    qr = _QR_LINK.search(invite)
    assert code in invite and qr is not None
    (ticket,) = parse_qs(urlsplit(qr.group(0)).query)["ticket"]
    assert emu.scene_of(ticket) == f"ref:{code}" and emu.qrcodes[ticket][1] is None  # permanent

    # 2. A newcomer scans it and follows: welcomed, and attributed to the distributor.
    welcome = await emu.subscribe(BUYER, scene=emu.scene_of(ticket))
    assert welcome.attempts == 1 and "商品" in (welcome.seen or "")
    buyer = await s.users.find("wechat", BUYER)
    assert buyer is not None and buyer.referrer_id == dist.id
    # the same code in a Telegram invite link brings a Telegram newcomer to the same distributor
    shop.tg.user(TG_FRIEND, "Finn", started=False)
    await shop.tg.open_link(TG_FRIEND, f"https://t.me/{shop.tg.bot_username}?start=r{code}")
    await shop.tg.wait_for(TG_FRIEND)
    friend = await s.users.find("telegram", str(TG_FRIEND))
    assert friend is not None and friend.referrer_id == dist.id

    # 3. They order in the chat and pay with WeChat Pay on the page opened inside WeChat.
    await emu.send_text(BUYER, "商品")
    await emu.send_text(BUYER, "1")
    ordered = (await emu.send_text(BUYER, "买 1")).seen or ""
    found = _PAY_LINK.search(ordered)
    assert found is not None and "19.90" in ordered
    ref = found.group(1)
    status, page = await shop.wx.open_page(BUYER, shop.wx.url("pay", ref))
    assert status == 200 and "微信支付" in page
    transaction_id = await shop.wx.pay_page(BUYER, page)
    (paid,) = platform.notifies
    assert paid.event_type == "TRANSACTION.SUCCESS" and paid.delivered
    order = await s.orders.get(ref)
    assert order.status is OrderStatus.DELIVERED and order.amount == PRICE

    # 4. The key arrives in the chat as a customer-service message (the sender runs in the background):
    # the order's one key, as the order page shows it to its buyer.
    (chat,) = await _eventually(lambda: [t for t in _custom(shop.wx, BUYER) if ref in t])
    (key,) = re.findall(r"TX-VIP-\d{4}", chat)
    keys_page = (await shop.wx.open_page(BUYER, shop.wx.url("order", ref)))[1]
    assert re.findall(r"<code>(TX-VIP-\d{4})</code>", keys_page) == [key]

    # 5. The distributor earned 10 %, pending for the holding period.
    assert await _pending_commission(s, dist.id) == COMMISSION
    await _ledger_check_is_clean(s, capsys)

    # 6. The owner opens the order in Telegram: paid with WeChat Pay, delivered; and refunds it.
    screen = await shop.say(OWNER, f"/order {ref}")
    shown = screen.text  # the message is edited in place later
    assert f"订单 {ref}：已发货" in shown and f"wechatpay {transaction_id[:8]}" in shown
    ask = await shop.tap(OWNER, screen, "退款")
    assert ref in ask.text and (await s.orders.get(ref)).status is OrderStatus.DELIVERED  # asked first
    done = await shop.tap(OWNER, ask, "确认退款")
    assert f"订单 {ref}：退款中" in done.text

    # 7. The refund goes back through WeChat Pay, for the whole payment; its notify completes it.
    await _eventually(lambda: platform.refunds)
    (refund,) = platform.refunds.values()
    assert (refund.out_trade_no, refund.transaction_id, refund.refund, refund.total) == (
        ref,
        transaction_id,
        PRICE,
        PRICE,
    )
    await _eventually(lambda: _refunded(s, ref))
    assert refund.status == "SUCCESS" and platform.orders[ref].refunded == PRICE
    (settled,) = [n for n in platform.notifies if n.event_type == "REFUND.SUCCESS"]
    # the shop completes the refund before its answer reaches WeChat Pay, which only then marks it delivered
    await _eventually(lambda: settled.delivered)
    assert settled.out_trade_no == ref
    assert await s.refunds.owed_by_provider("wechatpay") == []

    # 8. The commission is clawed back; the buyer is told in WeChat; the ledger is clean.
    assert await _pending_commission(s, dist.id) == 0
    told = await _eventually(lambda: [t for t in _custom(shop.wx, BUYER) if "退款" in t and ref in t])
    assert "19.90" in told[0]
    await _ledger_check_is_clean(s, capsys)
    again = await shop.say(OWNER, f"/order {ref}")
    assert f"订单 {ref}：已退款" in again.text and "refunded" in again.text


async def _refunded(services: Services, ref: str) -> bool:
    return (await services.orders.get(ref)).status is OrderStatus.REFUNDED
