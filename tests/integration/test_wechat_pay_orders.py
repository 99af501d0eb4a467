"""The record of orders opened at WeChat Pay, on SQLite and PostgreSQL: an order keeps the trade type it
was first opened as, the reconciliation takes each open order once per round whatever number of
schedulers ask, and an order settles once."""

from __future__ import annotations

import asyncio

import pytest

from core.clock import FrozenClock
from core.errors import InvalidInput
from core.services import Services
from core.services.wechat_pay import CHECK_EVERY, CLOSED, FIRST_CHECK_AFTER, PAID
from tests.conftest import stocked


async def _order(shop: Services, external_id: str = "o1") -> str:
    pid = await stocked(shop, 3)
    user = await shop.users.ensure("wechat", external_id)
    return (await shop.checkout.checkout_or_reuse(user.id, pid, 1, "USD")).order.ref


async def test_an_order_keeps_the_trade_type_it_was_first_opened_as(any_shop: Services) -> None:
    ref = await _order(any_shop)
    assert await any_shop.wechat_pay.state(ref) is None
    assert await any_shop.wechat_pay.trade_type(ref) is None
    assert await any_shop.wechat_pay.opened(ref, "NATIVE") == "NATIVE"
    assert await any_shop.wechat_pay.opened(ref, "JSAPI") == "NATIVE"
    assert await any_shop.wechat_pay.trade_type(ref) == "NATIVE"
    assert await any_shop.wechat_pay.state(ref) == "open"
    with pytest.raises(InvalidInput):
        await any_shop.wechat_pay.opened(ref, "MWEB")


async def test_each_open_order_is_taken_once_per_round_by_concurrent_schedulers(
    any_shop: Services, clock: FrozenClock
) -> None:
    ref = await _order(any_shop)
    await any_shop.wechat_pay.opened(ref, "JSAPI")
    assert await any_shop.wechat_pay.due() == []  # just opened: its notify may still come
    clock.advance(seconds=FIRST_CHECK_AFTER.total_seconds() + 1)
    rounds = await asyncio.gather(*(any_shop.wechat_pay.due() for _ in range(4)))
    assert sorted(len(r) for r in rounds) == [0, 0, 0, 1]
    taken = next(r for r in rounds if r)[0]
    assert taken.order_ref == ref and taken.order_status == "pending" and taken.trade_type == "JSAPI"
    assert await any_shop.wechat_pay.due() == []  # asked about just now
    clock.advance(seconds=CHECK_EVERY.total_seconds() + 1)
    assert [r.order_ref for r in await any_shop.wechat_pay.due()] == [ref]


async def test_a_settled_order_is_not_asked_about_again_and_settles_once(
    any_shop: Services, clock: FrozenClock
) -> None:
    ref = await _order(any_shop)
    await any_shop.wechat_pay.opened(ref, "JSAPI")
    assert await any_shop.wechat_pay.settle(ref, PAID)
    assert not await any_shop.wechat_pay.settle(ref, CLOSED)
    assert await any_shop.wechat_pay.state(ref) == PAID
    clock.advance(hours=1)
    assert await any_shop.wechat_pay.due() == []
    with pytest.raises(InvalidInput):
        await any_shop.wechat_pay.settle(ref, "open")
