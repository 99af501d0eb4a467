"""Membership reminders by template message (WECHAT_TEMPLATE_REMINDER), through the shop's real API client
against the WeChat emulator over HTTP (which refuses a field over 20 characters or with a line break,
47003, and a template to someone who does not follow, 43004), on SQLite and PostgreSQL.

The rule: inside the buyer's window the reminder is the customer-service text, as before; outside it, a
template message instead of waiting. Without the setting it waits for the window exactly as before."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.i18n import compile_catalogs
from core import tables as t
from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.models import Order
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from handlers.wechat import WechatCallback, WechatConfig, add_wechat_routes
from handlers.wechat.api import WechatApi
from handlers.wechat.outbox import WechatSender
from handlers.wechat.quota import next_beijing_midnight
from handlers.wechat.templates import TEMPLATE_FIELD_MAX, ReminderTemplate, Templates
from handlers.wechat.texts import Texts
from handlers.wechat.tokens import TokenStore
from sandbox.http import serve_app
from sandbox.wechat import Emulator, Received, serve
from tests.conftest import BACKENDS, make_db, query

APPID = "wx0123456789abcdef"
SECRET = "e2e-app-secret-00000000000000000"
TOKEN = "keyshopwxtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
BUYER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
PUBLIC = "https://shop.example.cn/wechat"
TEMPLATE_ID = "Xq3uR0VjY1mB-membership_ends_0001"
REMINDER = ReminderTemplate(TEMPLATE_ID)  # thing1 (product), time2 (end), thing3 (note)
TEMPLATE_SEND = "/cgi-bin/message/template/send"
CUSTOM_SEND = "/cgi-bin/message/custom/send"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NAME = "腾讯视频 VIP 会员月卡"
KEYS = ["VIP7788ABCD0001", "VIP7788ABCD0002"]


@dataclass
class World:
    emu: Emulator
    services: Services
    callback: WechatCallback
    clock: FrozenClock
    api: WechatApi
    texts: Texts
    start: datetime

    def sender(self, template: ReminderTemplate | None = REMINDER, api: Any = None) -> WechatSender:
        templates = Templates(api or self.api, template) if template is not None else None
        return WechatSender(self.services, self.api, self.texts, PUBLIC, templates=templates)

    async def member(
        self, language: str = "zh_CN", name: str = NAME, keys: list[str] = KEYS, openid: str = BUYER
    ) -> Order:
        """``openid`` (a follower) buys a 30-day membership, pays with WeChat Pay and gets the keys in the
        chat (the emulator then forgets that message and its call: the tests look at what came after)."""
        if openid not in self.emu.users:
            self.emu.follower(openid)
        uid = (await self.services.users.ensure("wechat", openid, language=language)).id
        pid = await self.services.catalog.add_product(
            ProductDraft(name=name, price=1990, max_qty=10, validity_days=30)
        )
        await self.services.stock.import_keys(pid, io.BytesIO("".join(k + "\n" for k in keys).encode()))
        order = await self.services.checkout.checkout(uid, pid, len(keys), "CNY")
        charge = f"42{order.id:08d}"
        await self.services.payments.confirm_payment("wechatpay", charge, order.ref, order.amount, "CNY")
        self.emu.record_payment(openid)
        await self.sender(template=None).send_due()
        [keys_text] = [r.text for r in self.emu.received(openid)]
        assert all(k in keys_text for k in keys)
        self.emu.delivered.pop(openid)
        self.emu.calls.clear()
        return order

    def later(self, **delta: float) -> None:
        """Time passes for the shop; WeChat (which signs pushes with the wall clock) forgets the windows
        the shop knows to be over."""
        self.clock.advance(**delta)
        for user in self.emu.users.values():
            user.grants.clear()

    async def remind(self) -> int:
        """The scheduler's ``remind_memberships`` job."""
        return await self.services.reminders.remind_memberships()

    async def writes(self, openid: str = BUYER, text: str = "帮助") -> None:
        push = await self.emu.send_text(openid, text)
        assert push.seen and not push.failed
        await self.callback.settle()

    def got(self, via: str, openid: str = BUYER) -> list[Received]:
        return [r for r in self.emu.received(openid) if r.via == via]

    def calls(self, path: str) -> int:
        return sum(n for (p, _), n in self.emu.calls.items() if p == path)

    async def reminders(self) -> list[tuple[str, int, str | None]]:
        """The membership reminders in the outbox: status, attempts, last error."""
        o = t.outbox
        q = select(o.c.status, o.c.attempts, o.c.last_error).where(o.c.kind == "membership_reminder")
        return [(r.status, r.attempts, r.last_error) for r in await query(self.services, q.order_by(o.c.id))]


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    db: Database = await make_db(request.param, tmp_path)
    clock = FrozenClock(datetime.now(UTC))
    config = ShopConfig(currency="CNY", timezone=SHANGHAI)
    services = Services(Context(db, Vault.from_spec(new_key_spec()), config, clock=clock))
    wx = WechatConfig(app_id=APPID, token=TOKEN, aes_key=AES_KEY, locale_dir=compile_catalogs())
    app = web.Application()
    callback = add_wechat_routes(app, services, wx)
    runner, shop_url = await serve_app(app)
    emu = Emulator(
        appid=APPID,
        secret=SECRET,
        token=TOKEN,
        aes_key=AES_KEY,
        callback_url=f"{shop_url}{wx.callback_path}",
    )
    emu.templates = {TEMPLATE_ID}
    emu_runner, emu_url = await serve(emu)
    api = WechatApi(APPID, SECRET, emu_url, TokenStore(services.wechat_tokens, APPID))
    try:
        yield World(emu, services, callback, clock, api, Texts(wx.locale_dir), clock.now())
    finally:
        await api.close()
        await emu_runner.cleanup()
        await runner.cleanup()
        await db.dispose()


def assert_fits(data: Mapping[str, str]) -> None:
    for key, value in data.items():
        assert 0 < len(value.encode("utf-16-le")) // 2 <= TEMPLATE_FIELD_MAX, (key, value)
        assert "\n" not in value and "\r" not in value and value.isprintable(), (key, value)


def assert_no_key(data: Mapping[str, str], keys: list[str]) -> None:
    for value in data.values():
        assert not any(k in value or k[:8] in value or k[-8:] in value for k in keys), value


@pytest.mark.parametrize(
    ("language", "note"), [("zh_CN", "即将到期，回复「商品」续费"), ("en", "Renew: send catalog")]
)
async def test_a_reminder_outside_the_window_goes_as_a_template_with_short_single_line_fields(
    world: World, language: str, note: str
) -> None:
    order = await world.member(language)
    world.later(days=27, hours=1)  # three days left; the payment's 48 hours are long over
    assert await world.remind() == 1
    await world.sender().send_due()
    [sent] = world.got("template")
    assert sent.template_id == TEMPLATE_ID and sent.url is None and sent.data is not None
    ends = (world.start + timedelta(days=30)).astimezone(SHANGHAI)  # in SHOP_TIMEZONE
    assert sent.data == {
        "thing1": NAME,
        "time2": f"{ends.year}年{ends.month}月{ends.day}日 {ends:%H:%M}",
        "thing3": note,
    }
    assert_fits(sent.data)
    assert_no_key(sent.data, KEYS)
    assert order.ref not in "".join(sent.data.values())
    assert world.got("custom") == [] and world.calls(CUSTOM_SEND) == 0  # known closed: not even tried
    assert await world.reminders() == [("sent", 0, None)]


async def test_the_expired_notice_says_so_and_every_field_stays_within_the_rules(world: World) -> None:
    await world.member()
    world.later(days=30, hours=2)
    assert await world.remind() == 1
    await world.sender().send_due()
    [sent] = world.got("template")
    assert sent.data is not None and sent.data["thing3"] == "已到期，回复「商品」续费"
    assert_fits(sent.data)


async def test_inside_the_window_the_reminder_is_the_text_and_no_template(world: World) -> None:
    order = await world.member()
    world.later(days=27, hours=1)
    await world.writes()  # the buyer wrote today: their window is open
    assert await world.remind() == 1
    await world.sender().send_due()
    [text] = [r.text for r in world.got("custom")]
    assert NAME in text and order.ref in text and "3 天后到期" in text
    assert world.got("template") == [] and world.calls(TEMPLATE_SEND) == 0
    assert await world.reminders() == [("sent", 0, None)]


async def test_a_window_wechat_closed_unknown_to_the_shop_sends_the_template_after_one_refusal(
    world: World,
) -> None:
    await world.member()
    world.later(days=27, hours=1)
    await world.writes()
    world.emu.users[BUYER].grants.clear()  # WeChat closed it (the shop does not know why: say, a quota)
    assert await world.remind() == 1
    await world.sender().send_due()
    assert world.calls(CUSTOM_SEND) == 1 and world.got("custom") == []  # 45015
    assert len(world.got("template")) == 1 and await world.reminders() == [("sent", 0, None)]


async def test_a_buyer_who_unfollowed_fails_the_reminder_once_without_retries(world: World) -> None:
    await world.member()
    await world.emu.unsubscribe(BUYER)
    await world.callback.settle()
    world.later(days=27, hours=1)
    assert await world.remind() == 1
    sender = world.sender()
    await sender.send_due()
    [(status, attempts, error)] = await world.reminders()
    assert (status, attempts) == ("failed", 0) and error is not None and error.startswith("43004")
    for _ in range(3):
        world.later(hours=1)
        assert await sender.send_due() == 0
    assert world.calls(TEMPLATE_SEND) == 1 and world.got("template") == []


async def test_a_long_product_name_with_line_breaks_and_emoji_is_cut_safely(world: World) -> None:
    name = "腾讯视频VIP🎬会员\n超级影视年卡👨‍👩‍👧尊享版\r\n4K杜比全景声多端通用月卡"
    assert len(name) == 40
    await world.member(name=name)
    world.later(days=27, hours=1)
    await world.remind()
    await world.sender().send_due()
    [sent] = world.got("template")  # the emulator took it: ≤ 20 characters, no line break
    assert sent.data is not None
    product = sent.data["thing1"]
    assert_fits(sent.data)
    assert product.endswith("…") and product.startswith("腾讯视频VIP会员 超级影视年卡")
    assert not any(0x1F000 <= ord(c) <= 0x1FAFF or c == "\u200d" for c in product)


async def test_a_name_of_emoji_only_leaves_the_order_reference_in_its_field(world: World) -> None:
    order = await world.member(name="🎮🎬🎵")
    world.later(days=27, hours=1)
    await world.remind()
    await world.sender().send_due()
    [sent] = world.got("template")
    assert sent.data is not None and sent.data["thing1"] == order.ref


class CountingApi:
    """The real client, its template calls counted (those WeChat refused before counting them too)."""

    def __init__(self, api: WechatApi) -> None:
        self.api, self.calls = api, 0

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None
    ) -> None:
        self.calls += 1
        await self.api.send_template(openid, template_id, data, url)


class CorruptingApi:
    """The real client with a bug: a line break added to every field (WeChat answers 47003)."""

    def __init__(self, api: WechatApi) -> None:
        self.api, self.calls = api, 0

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, str], url: str | None = None
    ) -> None:
        self.calls += 1
        await self.api.send_template(openid, template_id, {k: v + "\n" for k, v in data.items()}, url)


async def test_fields_wechat_refuses_are_a_bug_logged_and_failed_not_retried(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    await world.member()
    world.later(days=27, hours=1)
    await world.remind()
    buggy = CorruptingApi(world.api)
    sender = world.sender(api=buggy)
    with caplog.at_level(logging.ERROR, logger="handlers.wechat.outbox"):
        await sender.send_due()
    [(status, attempts, error)] = await world.reminders()
    assert (status, attempts) == ("failed", 0) and error is not None and error.startswith("47003")
    assert "refused the template's fields" in caplog.text
    world.later(hours=1)
    await sender.send_due()
    assert buggy.calls == 1 and world.got("template") == []


async def test_a_template_id_wechat_does_not_know_is_logged_once_and_reminders_wait_for_the_window(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.emu.templates = {"some-other-template"}
    await world.member()
    await world.member(openid="o-second-buyer-0000000000000000")
    world.later(days=27, hours=1)
    assert await world.remind() == 2
    sender = world.sender()
    sender.concurrency = 1
    with caplog.at_level(logging.ERROR, logger="handlers.wechat.outbox"):
        await sender.send_due()
    assert world.calls(TEMPLATE_SEND) == 1  # refused once (40037); the second reminder is not tried
    assert [r[0] for r in await world.reminders()] == ["parked", "parked"]
    assert caplog.text.count("WECHAT_TEMPLATE_REMINDER") == 1
    await world.writes()  # as without the setting: the buyer writes, the text goes
    await sender.send_due()
    assert len(world.got("custom")) == 1 and NAME in world.got("custom")[0].text


async def test_without_the_setting_a_reminder_outside_the_window_waits_for_it_as_before(world: World) -> None:
    await world.member()
    world.later(days=27, hours=1)
    assert await world.remind() == 1
    sender = world.sender(template=None)
    await sender.send_due()
    assert await world.reminders() == [("parked", 0, "window closed (known)")]
    assert world.calls(TEMPLATE_SEND) == 0 and world.calls(CUSTOM_SEND) == 0
    world.later(hours=12)
    assert await sender.send_due() == 0
    await world.writes()
    await sender.send_due()
    assert len(world.got("custom")) == 1 and world.got("template") == []
    assert await world.reminders() == [("sent", 0, None)]


async def test_a_used_up_template_quota_postpones_reminders_to_midnight_in_beijing_without_attempts(
    world: World,
) -> None:
    await world.member()
    await world.member(openid="o-second-buyer-0000000000000000")
    world.later(days=27, hours=1)
    await world.remind()
    world.emu.daily_quotas[TEMPLATE_SEND] = 0
    api = CountingApi(world.api)
    sender = world.sender(api=api)
    sender.concurrency = 1
    await sender.send_due()
    midnight = next_beijing_midnight(world.clock.now())
    assert sender.templates_paused_until == midnight
    assert [r[:2] for r in await world.reminders()] == [("pending", 0), ("pending", 0)]
    assert api.calls == 1  # refused (45009); the second reminder waits without asking
    assert await sender.send_due() == 0 and api.calls == 1  # not due before midnight
    assert sender.paused_until is None  # customer-service texts have their own quota: not paused
    world.later(seconds=(midnight - world.clock.now()).total_seconds() + 1)
    world.emu.daily_quotas[TEMPLATE_SEND] = 100_000
    await sender.send_due()
    assert [r[0] for r in await world.reminders()] == ["sent", "sent"] and api.calls == 3
    assert len(world.got("template")) == 1
