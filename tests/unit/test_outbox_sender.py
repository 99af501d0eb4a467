"""The sender's pacing (one message a second per private chat, within 30 a second overall), and its rounds:
what went out is marked sent once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time

import pytest
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import SendMessage
from sqlalchemy.exc import OperationalError

from bot.i18n import build_i18n
from core.clock import FrozenClock
from core.models import STARS
from core.services import Services
from handlers.telegram.workers import outbox as outbox_module
from handlers.telegram.workers.messages import Outgoing
from handlers.telegram.workers.outbox import OutboxSender, backoff
from tests.conftest import buyer, stocked


async def test_messages_to_one_private_chat_are_spaced_a_second_apart() -> None:
    sender = OutboxSender(None, None, None, private_interval=0.2)  # type: ignore[arg-type]
    stamps = []
    for _ in range(4):
        await sender._pace("501")
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(g >= 0.19 for g in gaps)


async def test_different_chats_share_only_the_global_rate() -> None:
    sender = OutboxSender(None, None, None, per_second=30)  # type: ignore[arg-type]
    start = time.monotonic()
    for chat in range(31):
        await sender._pace(str(chat))
    took = time.monotonic() - start
    assert 0.95 <= took < 2.0  # 31 sends at 30/s: about one second, not 31


async def test_groups_get_twenty_messages_a_minute() -> None:
    sender = OutboxSender(None, None, None)  # type: ignore[arg-type]
    await sender._pace("-100123")
    assert sender._next_chat["-100123"] - time.monotonic() > 2.9


def test_retries_back_off_exponentially_up_to_five_minutes() -> None:
    assert [backoff(n).total_seconds() for n in (0, 1, 2, 5, 20)] == [1, 2, 4, 32, 300]


async def test_a_round_whose_one_chat_fails_still_marks_sent_what_the_other_chats_sent(
    shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chat A's buyer blocked the bot and recording that fails on a database hiccup; chat B's two
    deliveries go out all the same, and neither is delivered again once the round's lease runs out."""
    pid = await stocked(shop, 3)
    for ext, charge in (("71", "a"), ("72", "b1"), ("72", "b2")):
        o = await shop.checkout.checkout(await buyer(shop, ext), pid, 1, STARS)
        await shop.payments.confirm_payment("telegram", charge, o.ref, o.amount, STARS)
    delivered: list[tuple[str, str]] = []

    async def deliver(out: Outgoing) -> None:
        if out.item.external_id == "71":
            raise TelegramForbiddenError(
                method=SendMessage(chat_id=71, text="x"), message="Forbidden: bot was blocked by the user"
            )
        delivered.append((out.item.external_id, out.item.message.order_ref))

    async def hiccup(user_id: int, blocked: bool) -> None:
        raise OperationalError("UPDATE users", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(outbox_module, "deliver", deliver)
    monkeypatch.setattr(shop.users, "set_bot_blocked", hiccup)
    sender = OutboxSender(None, shop, build_i18n(), private_interval=0.2)  # type: ignore[arg-type]
    with contextlib.suppress(OperationalError):
        await sender.drain()
    await asyncio.sleep(0.5)  # whatever the round still had under way
    assert len(delivered) == 2
    monkeypatch.undo()  # the database is well again
    monkeypatch.setattr(outbox_module, "deliver", deliver)
    clock.advance(minutes=3)  # the round's lease has run out
    await sender.drain()
    await asyncio.sleep(0.5)
    assert sorted(chat for chat, _ in delivered) == ["72", "72"]


async def test_a_long_round_marks_what_it_sent_as_it_goes_so_a_lapsed_lease_resends_nothing(
    shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chat's messages go out a second apart: a round of many of them could outlast its claim's
    lease. What went out is marked sent every couple of seconds, so another sender claiming the lapsed
    lease meanwhile finds none of it."""
    pid = await stocked(shop, 4)
    uid = await buyer(shop, "81")
    for charge in ("c1", "c2", "c3", "c4"):
        o = await shop.checkout.checkout(uid, pid, 1, STARS)
        await shop.payments.confirm_payment("telegram", charge, o.ref, o.amount, STARS)
    delivered: list[str] = []

    async def deliver(out: Outgoing) -> None:
        delivered.append(out.item.message.order_ref)

    monkeypatch.setattr(outbox_module, "deliver", deliver)
    monkeypatch.setattr(outbox_module, "MARK_SENT_EVERY", 0.3)
    sender = OutboxSender(None, shop, build_i18n(), private_interval=0.5)  # type: ignore[arg-type]
    round_ = asyncio.create_task(sender.drain())
    await asyncio.sleep(1.4)  # three of four out, one still to come
    clock.advance(minutes=3)  # the lease has lapsed: a second sender claims what is left
    again = await shop.outbox.claim("telegram")
    await round_
    assert len(delivered) == 4
    assert len(again) <= 1  # at most the one not yet sent


async def test_a_sender_stopped_while_a_message_wakes_it_stops_and_never_loops_on() -> None:
    """The stop (cancel) and a new message's wake-up land in the same turn of the event loop. Python 3.11's
    ``asyncio.wait_for`` then returns the wake-up and drops the cancel: the sender's loop went on for
    ever, and the shop never finished stopping (seen as a hung test teardown)."""
    from types import SimpleNamespace

    from handlers.telegram.workers.outbox import OutboxSender

    sender = SimpleNamespace(_wake=asyncio.Event())
    idle = asyncio.create_task(OutboxSender._idle(sender, 5))  # type: ignore[arg-type]
    for _ in range(3):
        await asyncio.sleep(0)  # it waits now
    sender._wake.set()
    idle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(idle, 2)


async def test_the_wechat_sender_stopped_while_waiting_stops() -> None:
    from types import SimpleNamespace

    from handlers.wechat.outbox import WechatSender

    sender = SimpleNamespace(_wake=asyncio.Event())
    idle = asyncio.create_task(WechatSender._idle(sender, asyncio.Event(), 5))  # type: ignore[arg-type]
    for _ in range(3):
        await asyncio.sleep(0)
    sender._wake.set()
    idle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(idle, 2)
