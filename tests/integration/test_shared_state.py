"""What several instances share through Redis (handlers/telegram/shared.py): each test plays two instances
as two ``RedisShared`` links of one bot on one Redis, and checks that what one does, the other sees: the
throttle's buckets, the user cache (a forget on one is a forget on all), the send pace and a group's
allowance. Redis being unreachable falls back to one process's own state, logged once each way."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from core.models import User
from handlers.telegram.middlewares import MESSAGES, NEWCOMER, TAPS, Rate
from handlers.telegram.shared import RedisShared, Unavailable

REDIS_URL = os.environ.get("TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="TEST_REDIS_URL is not set: Redis variant skipped (.ci/run sets it)"
)
BOT = 4242424242
SLOW = Rate(0.001, 3.0)  # a token per 1000 s: nothing refills while a test runs


@pytest.fixture
async def two() -> AsyncIterator[tuple[RedisShared, RedisShared]]:
    """Two instances' links to one Redis (the test's own database, emptied first)."""
    assert REDIS_URL
    admin = Redis.from_url(REDIS_URL)
    await admin.flushdb()
    await admin.aclose()
    a, b = RedisShared.from_url(REDIS_URL, BOT), RedisShared.from_url(REDIS_URL, BOT)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def _user(tg: int = 501, language: str = "en") -> User:
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    return User(7, "telegram", str(tg), language, False, None, False, False, None, created, "ann")


@needs_redis
async def test_a_user_is_throttled_as_one_whichever_instance_takes_their_updates(
    two: tuple[RedisShared, RedisShared],
) -> None:
    a, b = (link.throttle(SLOW, SLOW) for link in two)
    taken = [await x.reserve(TAPS, 501, 0.0) for x in (a, b, a)]
    assert taken == [0.0, 0.0, 0.0]  # the burst of 3, spent across both
    assert await b.reserve(TAPS, 501, 0.0) is None
    assert await a.reserve(TAPS, 501, 0.0) is None
    assert await b.reserve(TAPS, 502, 0.0) == 0.0  # someone else has their own bucket
    assert await a.reserve(MESSAGES, 501, 0.0) == 0.0  # and messages theirs


@needs_redis
async def test_a_message_over_the_burst_waits_its_turn_counted_for_every_instance(
    two: tuple[RedisShared, RedisShared],
) -> None:
    a, b = (link.throttle(Rate(1.0, 1.0), Rate(1.0, 1.0)) for link in two)
    assert await a.reserve(MESSAGES, 501, 3.0) == 0.0
    second = await b.reserve(MESSAGES, 501, 3.0)
    assert second is not None and 0.9 < second <= 1.0  # reserved a second ahead
    third = await a.reserve(MESSAGES, 501, 3.0)
    assert third is not None and 1.9 < third <= 2.0
    assert await b.reserve(MESSAGES, 501, 0.5) is None  # too far ahead: dropped, nothing taken


@needs_redis
async def test_slow_down_is_said_once_across_instances_until_an_update_is_let_through(
    two: tuple[RedisShared, RedisShared],
) -> None:
    a, b = (link.throttle(Rate(1000.0, 1.0), SLOW) for link in two)
    assert await a.notice_turn(501) is not None
    assert await b.notice_turn(501) is None  # told already, by the other instance
    assert await a.notice_turn(501) is None
    assert await b.reserve(TAPS, 501, 0.0) is not None  # a tap let through
    assert await a.notice_turn(501) is not None  # may be told again


@needs_redis
async def test_the_user_cache_is_one_for_all_instances_and_a_forget_forgets_everywhere(
    two: tuple[RedisShared, RedisShared],
) -> None:
    a, b = (link.user_cache() for link in two)
    assert await b.lookup(501) is None
    await a.put(501, _user())
    assert await b.lookup(501) == _user()
    await b.forget("501")  # e.g. the language changed on b
    assert await a.lookup(501) is None


@needs_redis
async def test_a_newcomers_row_replaces_only_the_newcomer_mark(two: tuple[RedisShared, RedisShared]) -> None:
    a, b = (link.user_cache() for link in two)
    await a.put(501, NEWCOMER)
    assert await b.lookup(501) is NEWCOMER
    await b.newcomer_stored(501, _user())
    assert await a.lookup(501) == _user()
    await a.forget(501)  # a change of theirs: the row stored later may be older
    await b.newcomer_stored(501, _user(language="zh_CN"))
    assert await a.lookup(501) is None


@needs_redis
async def test_a_cached_row_this_release_cannot_read_is_a_miss(two: tuple[RedisShared, RedisShared]) -> None:
    a, _ = two
    await a.redis.set(a.key("user", 501), b'{"id": 7, "some_future_field": 1}')
    assert await a.user_cache().lookup(501) is None


@needs_redis
async def test_two_instances_sending_keep_one_pace_for_the_bot(two: tuple[RedisShared, RedisShared]) -> None:
    """Telegram counts the bot's messages: two instances each at 20 a second would be 40."""
    pacers = [link.send_pacer("send", 20.0) for link in two]
    went: list[float] = []

    async def send(pacer_index: int) -> None:
        await pacers[pacer_index].turn()
        went.append(time.monotonic())

    await asyncio.gather(*(send(i % 2) for i in range(8)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(sorted(went))]
    assert all(g >= 0.045 for g in gaps), gaps


@needs_redis
async def test_a_groups_allowance_counts_what_every_instance_posts_there(
    two: tuple[RedisShared, RedisShared],
) -> None:
    a, b = (link.group_pacer(3, gap=1.0) for link in two)
    waits = [await a.slot(-100), await b.slot(-100), await a.slot(-100)]
    assert waits[0] == 0.0 and all(  # one a second, across both
        w is not None and n - 0.1 < w <= n for n, w in enumerate(waits)
    ), waits
    assert await b.slot(-100) is None  # the minute's allowance is used
    assert await b.slot(-200) == 0.0
    assert [await a.allow(("told", -100, 7), 1), await b.allow(("told", -100, 7), 1)] == [True, False]


async def test_with_redis_unreachable_each_piece_does_what_one_process_does_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Buyers are served while Redis is away: the throttle keeps its limits in this process, the user cache
    reads the database (a miss), the pace is kept locally; one warning, not one per update."""
    link = RedisShared.from_url("redis://127.0.0.1:1/0", BOT)  # nobody listens on port 1
    try:
        throttle = link.throttle(SLOW, SLOW)
        with caplog.at_level(logging.WARNING, logger="handlers.telegram.shared"):
            assert [await throttle.reserve(TAPS, 501, 0.0) for _ in range(4)] == [0.0, 0.0, 0.0, None]
            cache = link.user_cache()
            await cache.put(501, _user())
            assert await cache.lookup(501) is None
            await cache.forget(501)
            await link.send_pacer("send", 1000.0).turn()
            assert await link.group_pacer(1, gap=0.0).slot(-1) == 0.0
        assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()] != []
        assert len(caplog.records) == 1, [r.getMessage() for r in caplog.records]
    finally:
        await link.close()


async def test_redis_is_left_alone_a_while_after_it_failed_and_its_return_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = RedisShared(Redis(), BOT, retry_every=60.0)
    calls: list[str] = []

    def answer(outcome: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            calls.append(outcome)
            if outcome == "down":
                raise RedisConnectionError("refused")
            return outcome

        return call

    with caplog.at_level(logging.INFO, logger="handlers.telegram.shared"):
        for _ in range(3):
            with pytest.raises(Unavailable):
                await link.run(answer("down"))
        assert calls == ["down"]  # tried once, then left alone
        link.retry_every, link._retry_at = 0.0, 0.0
        assert await link.run(answer("up")) == "up"
        assert await link.run(answer("up")) == "up"
    said = [r.getMessage().split(" (")[0].split(":")[0] for r in caplog.records]
    assert said == ["Redis unreachable", "Redis reachable again"]
    await link.close()


@needs_redis
async def test_two_shops_on_one_redis_keep_apart_a_buyers_conversation_state(
    two: tuple[RedisShared, RedisShared],
) -> None:
    from aiogram.fsm.storage.base import StorageKey

    from bot.app import make_storage
    from bot.settings import load_settings

    assert REDIS_URL
    storage = make_storage(load_settings(None, redis_url=REDIS_URL))
    assert storage is not None
    try:
        shop_a, shop_b = (StorageKey(bot_id=bot, chat_id=501, user_id=501) for bot in (BOT, BOT + 1))
        await storage.set_state(shop_a, "Withdraw:amount")
        await storage.set_data(shop_a, {"currency": "USD"})
        assert await storage.get_state(shop_b) is None  # the same buyer in another shop's bot
        assert await storage.get_data(shop_b) == {}
        assert await storage.get_state(shop_a) == "Withdraw:amount"
    finally:
        await storage.close()
