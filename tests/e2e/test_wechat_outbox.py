"""The WeChat outbox sender against the WeChat emulator over HTTP (``sandbox/wechat``), on SQLite and
PostgreSQL: messages go out as customer-service texts inside the buyer's window; outside it they are
parked, not failed, and go out once when the buyer writes (pushed through the emulator to the shop's real
callback); a used-up quota parks too; texts never pass 2048 bytes; a WeChat Pay refund is paid back once,
whatever happens to its text; a used-up daily quota stops everything until midnight in Beijing."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.i18n import compile_catalogs
from core import tables as t
from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.messages import AwaitingManual, Broadcast, Message, RefundDue, RefundMade
from core.models import Order
from core.reactions import write_message
from core.services import Services
from core.services.catalog import ProductDraft
from core.services.outbox import OutboxMessage
from core.vault import Vault, new_key_spec
from handlers.wechat import WechatCallback, WechatConfig, add_wechat_routes
from handlers.wechat.errors import api_error
from handlers.wechat.outbox import WechatSender
from handlers.wechat.quota import next_beijing_midnight
from handlers.wechat.texts import TEXT_MAX_BYTES, Texts
from sandbox.http import serve_app
from sandbox.wechat import Emulator, serve
from tests.conftest import BACKENDS, make_db, query

APPID = "wx0123456789abcdef"
TOKEN = "keyshopwxtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
BUYER = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
PUBLIC = "https://shop.example.cn"
CUSTOM_SEND = "/cgi-bin/message/custom/send"


class EmulatorTexts:
    """``send_text`` as the shop's API client makes it (stable_token, then custom/send), WeChat's errcodes
    turned into ``handlers.wechat.errors``: a stand-in for ``handlers.wechat.api.WechatApi``."""

    def __init__(self, session: aiohttp.ClientSession, base: str, emu: Emulator) -> None:
        self.session, self.base, self.emu = session, base, emu
        self._token: str | None = None

    async def send_text(self, openid: str, text: str) -> None:
        if self._token is None:
            body = {"grant_type": "client_credential", "appid": self.emu.appid, "secret": self.emu.secret}
            self._token = (await self._post("/cgi-bin/stable_token", {}, body))["access_token"]
        message = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        await self._post(CUSTOM_SEND, {"access_token": self._token}, message)

    async def _post(self, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(self.base + path, params=query, json=body) as resp:
            answer: dict[str, Any] = await resp.json()
        if answer.get("errcode", 0):
            raise api_error(answer["errcode"], answer.get("errmsg", ""))
        return answer


@dataclass
class World:
    emu: Emulator
    services: Services
    callback: WechatCallback
    clock: FrozenClock
    api: EmulatorTexts
    texts: Texts
    alerts: list[str] = field(default_factory=list)
    paid_back: list[tuple[str, int]] = field(default_factory=list)

    def sender(self, *, public_url: str | None = PUBLIC, pays_back: bool = True) -> WechatSender:
        async def pay_back(m: RefundDue, item: OutboxMessage) -> None:
            self.paid_back.append((m.charge_id, item.id))

        world = self

        class Alerts:
            async def notify(self, text: str, *, kind: str) -> bool:
                world.alerts.append(text)
                return True

        return WechatSender(
            self.services,
            self.api,
            self.texts,
            public_url=public_url,
            pay_back=pay_back if pays_back else None,
            alerts=Alerts(),
        )

    async def writes(self, openid: str, text: str = "帮助") -> None:
        """The buyer writes to the account (the emulator pushes to the shop's callback)."""
        push = await self.emu.send_text(openid, text)
        assert push.seen and not push.failed
        await self.callback.settle()

    def custom(self, openid: str = BUYER) -> list[str]:
        return [r.text for r in self.emu.received(openid) if r.via == "custom"]

    def calls(self) -> int:
        return sum(n for (path, _), n in self.emu.calls.items() if path == CUSTOM_SEND)

    async def user(self, openid: str = BUYER) -> int:
        return (await self.services.users.ensure("wechat", openid, language="zh_CN")).id

    async def queue(self, user_id: int, *messages: Message) -> None:
        def add(uow: Any) -> None:
            for m in messages:
                write_message(uow, user_id, m, self.clock.now())
            uow.commit()

        await self.services.ctx.write(add)

    async def rows(self) -> list[tuple[str, str, int, int]]:
        o = t.outbox
        q = select(o.c.kind, o.c.status, o.c.attempts, o.c.progress).order_by(o.c.id)
        return [(r.kind, r.status, r.attempts, r.progress) for r in await query(self.services, q)]

    async def buys(self, user_id: int, keys: list[str], *, charge: str = "4200000001") -> Order:
        """``user_id`` buys ``keys`` of a new product and pays with WeChat Pay (the emulator sees it too)."""
        pid = await self.services.catalog.add_product(
            ProductDraft(name="腾讯视频 VIP 月卡", price=1990, max_qty=max(10, len(keys)))
        )
        await self.services.stock.import_keys(pid, io.BytesIO("".join(k + "\n" for k in keys).encode()))
        order = await self.services.checkout.checkout(user_id, pid, len(keys), "CNY")
        await self.services.payments.confirm_payment("wechatpay", charge, order.ref, order.amount, "CNY")
        self.emu.record_payment(BUYER)
        return order


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    db: Database = await make_db(request.param, tmp_path)
    clock = FrozenClock(datetime.now(UTC))
    services = Services(Context(db, Vault.from_spec(new_key_spec()), ShopConfig(currency="CNY"), clock=clock))
    config = WechatConfig(app_id=APPID, token=TOKEN, aes_key=AES_KEY, locale_dir=compile_catalogs())
    app = web.Application()
    callback = add_wechat_routes(app, services, config)
    runner, shop_url = await serve_app(app)
    emu = Emulator(
        appid=APPID, token=TOKEN, aes_key=AES_KEY, callback_url=f"{shop_url}{config.callback_path}"
    )
    emu_runner, emu_url = await serve(emu)
    session = aiohttp.ClientSession()
    try:
        yield World(
            emu, services, callback, clock, EmulatorTexts(session, emu_url, emu), Texts(config.locale_dir)
        )
    finally:
        await session.close()
        await emu_runner.cleanup()
        await runner.cleanup()
        await db.dispose()


async def test_keys_reach_a_buyer_inside_the_window_once(world: World) -> None:
    await world.emu.subscribe(BUYER)
    await world.writes(BUYER, "商品")
    order = await world.buys(await world.user(), ["CDK-0001", "CDK-0002"])
    sender = world.sender()
    assert await sender.send_due() == 1
    [text] = world.custom()
    assert order.ref in text and "CDK-0001" in text and "CDK-0002" in text
    assert await world.rows() == [("order_delivered", "sent", 0, 0)]
    assert await sender.send_due() == 0 and len(world.custom()) == 1


async def test_a_closed_window_parks_the_buyers_messages_and_their_next_message_releases_them_once(
    world: World,
) -> None:
    world.emu.follower(BUYER)  # follows, but has not written for days: no window
    uid = await world.user()
    await world.queue(uid, AwaitingManual("R-1"), RefundMade("R-2", None, 1990, "CNY"))
    sender = world.sender()
    assert await sender.send_due() == 2
    assert world.calls() == 1  # refused once; their other message was not tried
    assert await world.rows() == [
        ("order_awaiting_manual", "parked", 0, 1),  # its first step (the admins told) done
        ("payment_refunded_by_hand", "parked", 0, 0),
    ]
    # not a failure: the admins hear of the paid manual order (once), nothing of the window
    assert world.custom() == [] and world.alerts == ["🧾 manual order R-1 is paid (WeChat)"]
    world.clock.advance(hours=72)
    assert await sender.send_due() == 0  # parked is not due, however long
    assert world.calls() == 1

    await world.writes(BUYER)  # through the real callback: the window opens, the messages are released
    assert await sender.send_due() == 2
    sent = world.custom()
    assert len(sent) == 2 and "R-1" in sent[0] and "R-2" in sent[1]
    assert [r[1] for r in await world.rows()] == ["sent", "sent"]
    await world.writes(BUYER)
    assert await sender.send_due() == 0 and len(world.custom()) == 2  # once
    assert len(world.alerts) == 1


async def test_a_used_up_quota_parks_the_rest_until_the_buyer_writes_again(world: World) -> None:
    world.emu.follower(BUYER)
    world.emu.open_window(BUYER, "message")  # a window the shop never heard of: WeChat's answer decides
    uid = await world.user()
    await world.queue(uid, *(AwaitingManual(f"R-{i}") for i in range(7)))
    sender = world.sender()
    await sender.send_due()
    assert len(world.custom()) == 5 and world.calls() == 6  # the sixth refused (45047), the seventh not tried
    assert [r[1] for r in await world.rows()] == ["sent"] * 5 + ["parked"] * 2
    await world.writes(BUYER)
    await sender.send_due()
    assert [m.split("订单 ")[1].split(" ")[0] for m in world.custom()] == [f"R-{i}" for i in range(7)]


async def test_a_window_the_shop_knows_is_used_up_costs_no_refused_call(world: World) -> None:
    world.emu.follower(BUYER)
    await world.writes(BUYER)  # the shop records it: five messages in 48 hours
    uid = await world.user()
    await world.queue(uid, *(AwaitingManual(f"R-{i}") for i in range(7)))
    await world.sender().send_due()
    assert len(world.custom()) == 5 and world.calls() == 5
    assert [r[1] for r in await world.rows()] == ["sent"] * 5 + ["parked"] * 2


async def test_long_deliveries_are_cut_below_wechats_limit_and_resume_where_they_stopped(
    world: World,
) -> None:
    """No 45002 ever: every text is within 2048 bytes. More parts than a window of five: five now, the
    rest once the buyer writes, none twice."""
    world.emu.follower(BUYER)
    await world.writes(BUYER)
    uid = await world.user()
    keys = [f"LONG-{i:02d}-" + "卡" * 150 for i in range(28)]
    order = await world.buys(uid, keys)
    world.emu.users[BUYER].grants.pop("payment")  # keep only the five messages of the buyer's text
    await world.services.ctx.write(_forget_payment, uid)
    sender = world.sender(public_url=None)
    await sender.send_due()
    first = world.custom()
    assert len(first) == 5 and await world.rows() == [("order_delivered", "parked", 0, 5)]
    await world.writes(BUYER)
    await sender.send_due()
    parts = world.custom()
    assert len(parts) > 5 and len(set(parts)) == len(parts) and parts[:5] == first
    assert parts[-1].startswith(f"({len(parts)}/{len(parts)})")
    assert all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    assert all(any(k in p for p in parts) for k in keys) and order.ref in parts[0]
    assert await world.rows() == [("order_delivered", "sent", 0, 5)]


def _forget_payment(uow: Any, user_id: int) -> None:
    w = t.wechat_windows
    uow.repo.conn.execute(w.update().where(w.c.user_id == user_id).values(paid_at=None))
    uow.commit()


async def test_a_wechat_pay_refund_is_paid_back_once_though_its_text_waits_for_the_window(
    world: World,
) -> None:
    world.emu.follower(BUYER)
    uid = await world.user()
    order = await world.buys(uid, ["CDK-0001"], charge="4200000077")
    sender = world.sender()
    await sender.send_due()  # the keys, in the payment's window
    await world.services.refunds.request_refund(order.ref, actor="admin:1")
    world.emu.users[BUYER].grants.clear()  # the payment's 48 hours are over, for WeChat
    await world.services.ctx.write(_forget_payment, uid)
    await sender.send_due()
    assert world.paid_back == [("4200000077", 2)]
    assert (await world.rows())[1] == ("payment_refund", "parked", 0, 1)  # paid back; only its text waits
    await sender.send_due()
    await world.writes(BUYER)
    await sender.send_due()
    assert world.paid_back == [("4200000077", 2)]  # released and sent: not paid back a second time
    assert "4200000077" not in world.custom()[-1] and order.ref in world.custom()[-1]
    assert (await world.rows())[1] == ("payment_refund", "sent", 0, 1)
    assert world.alerts == []


async def test_without_a_refund_call_a_wechat_pay_refund_stays_due_and_is_never_marked_sent(
    world: World,
) -> None:
    await world.emu.subscribe(BUYER)
    await world.writes(BUYER)
    uid = await world.user()
    await world.queue(uid, RefundDue("wechatpay", "4200000088", "R-7", "admin", 1990, "CNY"))
    sender = world.sender(pays_back=False)
    await sender.send_due()
    assert await world.rows() == [("payment_refund", "pending", 0, 0)] and world.custom() == []
    o = t.outbox
    [why] = await query(world.services, select(o.c.last_error))
    assert "refund" in why[0]
    world.clock.advance(minutes=16)
    assert [m.kind for m in await world.services.outbox.claim("wechat")] == [
        "payment_refund"
    ]  # retried later


async def test_a_used_up_daily_quota_stops_every_send_until_midnight_in_beijing(world: World) -> None:
    for openid in (BUYER, "o-second-buyer-0000000000000000"):
        await world.emu.subscribe(openid)
        await world.writes(openid)
    first, second = await world.user(), await world.user("o-second-buyer-0000000000000000")
    await world.queue(first, AwaitingManual("R-1"), AwaitingManual("R-2"))
    await world.queue(second, AwaitingManual("R-3"))
    world.emu.daily_quotas[CUSTOM_SEND] = world.calls() + 1
    sender = world.sender(public_url=None)
    sender.concurrency = 1
    await sender.send_due()
    midnight = next_beijing_midnight(world.clock.now())
    assert sender.paused_until == midnight and midnight.astimezone(UTC).hour == 16
    statuses = Counter(r[1] for r in await world.rows())
    assert statuses == {"sent": 1, "pending": 2}
    assert [r[2] for r in await world.rows()] == [0, 0, 0]  # waiting is no failed attempt
    calls = world.calls()
    assert await sender.send_due() == 0 and world.calls() == calls  # nothing tried before midnight
    world.clock.advance(seconds=(midnight - world.clock.now()).total_seconds() + 1)
    world.emu.daily_quotas[CUSTOM_SEND] = 10_000
    assert await sender.send_due() == 2
    assert Counter(r[1] for r in await world.rows()) == {"sent": 3}


async def test_a_broadcast_is_not_parked_for_a_buyer_whose_window_is_closed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def text_to_send(broadcast_id: int) -> str:
        return "<b>上新</b>"

    monkeypatch.setattr(world.services.broadcasts, "text_to_send", text_to_send)
    world.emu.follower(BUYER)
    await world.queue(await world.user(), Broadcast(1))
    await world.sender().send_due()
    [(kind, status, _, _)] = await world.rows()
    assert (kind, status) == ("broadcast", "failed")


async def test_an_unfollow_releases_nothing_and_a_menu_tap_releases_what_waited(world: World) -> None:
    await world.emu.subscribe(BUYER)
    await world.callback.settle()
    uid = await world.user()
    world.emu.users[BUYER].grants.clear()
    await world.services.ctx.write(_close_window, uid)
    await world.queue(uid, AwaitingManual("R-1"))
    sender = world.sender()
    await sender.send_due()
    assert (await world.rows())[0][1] == "parked" and world.calls() == 0  # known closed: not even tried
    await world.emu.unsubscribe(BUYER)
    await world.callback.settle()
    assert (await world.rows())[0][1] == "parked"
    await world.emu.subscribe(BUYER)
    await world.emu.click(BUYER, "orders")
    await world.callback.settle()
    await sender.send_due()
    assert [r[1] for r in await world.rows()] == ["sent"] and len(world.custom()) == 1


def _close_window(uow: Any, user_id: int) -> None:
    w = t.wechat_windows
    past = datetime.now(UTC) - timedelta(days=3)
    uow.repo.conn.execute(w.update().where(w.c.user_id == user_id).values(event_at=past, message_at=past))
    uow.commit()


class Crash(BaseException):
    """The process dying mid-send (nothing catches it)."""


class DyingApi:
    async def send_text(self, openid: str, text: str) -> None:
        raise Crash


async def test_a_refund_paid_back_just_before_the_sender_died_is_not_paid_back_again(world: World) -> None:
    await world.emu.subscribe(BUYER)
    await world.writes(BUYER)
    await world.queue(await world.user(), RefundDue("wechatpay", "4200000099", "R-8", "admin", 1990, "CNY"))
    dying = world.sender()
    dying.api = DyingApi()
    with pytest.raises(Crash):
        await dying.send_due()
    assert world.paid_back == [("4200000099", 1)]
    world.clock.advance(minutes=3)  # its lease ran out: another sender takes it up
    await world.sender().send_due()
    assert world.paid_back == [("4200000099", 1)]
    assert len(world.custom()) == 1 and "R-8" in world.custom()[0]
    assert await world.rows() == [("payment_refund", "sent", 0, 1)]


class UnreachableApi:
    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    async def send_text(self, openid: str, text: str) -> None:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    "error",
    [aiohttp.ClientConnectionError("refused"), api_error(-2, "/cgi-bin/message/custom/send: timeout")],
)
async def test_an_unreachable_wechat_pauses_sending_instead_of_failing_every_message(
    world: World, error: Exception
) -> None:
    await world.emu.subscribe(BUYER)
    await world.writes(BUYER)
    await world.queue(await world.user(), *(AwaitingManual(f"R-{i}") for i in range(3)))
    sender = world.sender()
    sender.api = api = UnreachableApi(error)
    await sender.send_due()
    assert api.calls == 1  # the first tells: the rest wait for the pause to end
    assert [(r[1], r[2]) for r in await world.rows()] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert sender.paused_until is not None and await sender.send_due() == 0 and api.calls == 1
    world.clock.advance(minutes=10)
    sender.api = world.api  # WeChat is back
    await sender.send_due()
    assert [r[1] for r in await world.rows()] == ["sent"] * 3


async def test_a_refund_wechat_pay_keeps_refusing_ends_with_the_admins_not_silently(world: World) -> None:
    from core.errors import InvalidOrderState
    from core.services.outbox import MAX_ATTEMPTS

    await world.emu.subscribe(BUYER)
    await world.writes(BUYER)
    uid = await world.user()
    await world.queue(
        uid,
        RefundDue("wechatpay", "4200000100", "R-1", "admin", 1990, "CNY"),
        RefundDue("wechatpay", "4200000101", "R-2", "admin", 1990, "CNY"),
    )
    failures: list[BaseException] = [RuntimeError("WeChat Pay answered 500"), InvalidOrderState(status="x")]

    async def refusing(m: RefundDue, item: OutboxMessage) -> None:
        raise failures[item.id - 1]

    sender = world.sender()
    sender.pay_back = refusing
    await sender.send_due()
    rows = await world.rows()
    assert rows[0] == ("payment_refund", "pending", 1, 0)  # a failure: retried with backoff
    assert rows[1][1] == "failed" and len(world.alerts) == 1 and "R-2" in world.alerts[0]
    await world.services.ctx.write(_set_attempts, MAX_ATTEMPTS - 1)
    world.clock.advance(minutes=10)
    await sender.send_due()
    assert (await world.rows())[0][1] == "failed"
    assert len(world.alerts) == 2 and "R-1" in world.alerts[1] and "by hand" in world.alerts[1]
    assert world.custom() == []  # nobody was told of money that did not go back


def _set_attempts(uow: Any, attempts: int) -> None:
    o = t.outbox
    uow.repo.conn.execute(o.update().where(o.c.status == "pending").values(attempts=attempts))
    uow.commit()
