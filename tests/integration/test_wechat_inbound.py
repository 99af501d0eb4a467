"""A WeChat push is taken once across instances, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from core.clock import FrozenClock
from core.services import Services
from core.services.wechat_inbound import MAX_KEY, event_key, message_key


async def test_of_concurrent_deliveries_of_one_push_exactly_one_takes_it(any_shop: Services) -> None:
    takes = await asyncio.gather(*(any_shop.wechat_inbound.take(message_key(77)) for _ in range(8)))
    assert sorted(takes) == [False] * 7 + [True]
    assert await any_shop.wechat_inbound.take(message_key(78))


async def test_an_event_key_names_sender_time_and_event_and_a_long_one_still_fits(any_shop: Services) -> None:
    assert event_key("o1", 100, "subscribe") != event_key("o1", 100, "CLICK")
    long = event_key("o" * 200, 100, "subscribe")
    assert len(long) <= MAX_KEY and long != event_key("o" * 199 + "p", 100, "subscribe")
    assert await any_shop.wechat_inbound.take(long) and not await any_shop.wechat_inbound.take(long)


async def test_forgotten_pushes_are_only_those_older_than_a_retry_could_be(
    any_shop: Services, clock: FrozenClock
) -> None:
    await any_shop.wechat_inbound.take(message_key(1))
    clock.advance(days=2)
    await any_shop.wechat_inbound.take(message_key(2))
    assert await any_shop.wechat_inbound.forget() == 1
    assert not await any_shop.wechat_inbound.take(message_key(2))
