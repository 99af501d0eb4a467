"""Checkout: the purchase rules that decide whether an order is placed and its stock reserved, one test
per rule, on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.clock import FrozenClock
from core.errors import (
    CurrencyNotAccepted,
    DailyLimitReached,
    InvalidInput,
    LimitExceeded,
    OutOfStock,
    PhoneRequired,
    ProductUnavailable,
    QuantityOutOfRange,
    TooManyPendingOrders,
    UserBlocklisted,
)
from core.models import STARS, OrderStatus
from core.services import Services
from tests.conftest import buyer, key_statuses, pay, stocked

# ---------------------------------------------------------------- what checkout reserves


async def test_checkout_reserves_exactly_the_quantity_ordered(shop: Services) -> None:
    pid = await stocked(shop, 5)
    order = await shop.checkout.checkout(await buyer(shop), pid, 3, STARS)
    assert order.status is OrderStatus.PENDING
    assert order.amount == 150 and order.currency == STARS
    assert await key_statuses(shop, pid) == {"available": 2, "reserved": 3}


async def test_checkout_in_shop_currency_charges_the_minor_unit_price(shop: Services) -> None:
    pid = await stocked(shop, 2)
    order = await shop.checkout.checkout(await buyer(shop), pid, 2, "USD")
    assert (order.amount, order.currency) == (1980, "USD")


async def test_too_little_stock_reserves_nothing_and_creates_no_order(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    with pytest.raises(OutOfStock):
        await shop.checkout.checkout(uid, pid, 3, STARS)
    assert await key_statuses(shop, pid) == {"available": 2}
    assert await shop.orders.for_user(uid) == []


async def test_buying_the_same_again_while_unpaid_returns_the_same_order_and_holds_no_more_stock(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 5)
    uid = await buyer(shop)
    first = await shop.checkout.checkout(uid, pid, 2, STARS)
    again = await shop.checkout.checkout(uid, pid, 2, STARS)  # a double tap, or Buy after losing the invoice
    assert again.ref == first.ref and await shop.stock.available(pid) == 3
    other_qty = await shop.checkout.checkout(uid, pid, 1, STARS)  # a different purchase is a new order
    assert other_qty.ref != first.ref and await shop.stock.available(pid) == 2
    clock.advance(minutes=11)  # less than a third of the reservation left: a fresh order, not a dying one
    fresh = await shop.checkout.checkout(uid, pid, 2, STARS)
    assert fresh.ref != first.ref


# ---------------------------------------------------------------- what may be bought, by whom


@pytest.mark.parametrize("qty", [0, -1, 6, 10**9])
async def test_quantity_outside_the_products_limits_is_refused(shop: Services, qty: int) -> None:
    pid = await stocked(shop, 10, min_qty=1, max_qty=5)
    with pytest.raises(QuantityOutOfRange):
        await shop.checkout.checkout(await buyer(shop), pid, qty, STARS)
    assert await key_statuses(shop, pid) == {"available": 10}


async def test_quantity_that_is_not_a_whole_number_is_refused(shop: Services) -> None:
    pid = await stocked(shop, 3)
    with pytest.raises(InvalidInput):
        await shop.checkout.checkout(await buyer(shop), pid, 1.5, STARS)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await shop.checkout.checkout(await buyer(shop), pid, True, STARS)


async def test_a_forged_quantity_whose_total_one_invoice_cannot_take_reserves_nothing(shop: Services) -> None:
    pid = await stocked(shop, 10, price_stars=4000, max_qty=5)  # 3 x 4000 Stars > one invoice's 10,000
    uid = await buyer(shop)
    with pytest.raises(QuantityOutOfRange) as e:
        await shop.checkout.checkout(uid, pid, 3, STARS)
    assert e.value.params["max"] == 2 and await shop.stock.available(pid) == 10
    await shop.checkout.checkout(uid, pid, 2, STARS)


async def test_a_currency_the_product_has_no_price_in_is_refused(shop: Services) -> None:
    pid = await stocked(shop, 3, price_stars=0)
    uid = await buyer(shop)
    with pytest.raises(CurrencyNotAccepted):
        await shop.checkout.checkout(uid, pid, 1, STARS)
    with pytest.raises(CurrencyNotAccepted):
        await shop.checkout.checkout(uid, pid, 1, "EUR")


async def test_inactive_product_cannot_be_bought(shop: Services) -> None:
    pid = await stocked(shop, 3)
    await shop.catalog.update_product(pid, active=False)
    with pytest.raises(ProductUnavailable):
        await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)


async def test_blocklisted_user_cannot_buy(shop: Services) -> None:
    pid = await stocked(shop, 3)
    with pytest.raises(UserBlocklisted):
        await shop.checkout.checkout(await buyer(shop, blocklisted=True), pid, 1, STARS)


async def test_product_requiring_a_phone_refuses_buyers_without_one(shop: Services) -> None:
    pid = await stocked(shop, 3, requires_phone=True)
    with pytest.raises(PhoneRequired):
        await shop.checkout.checkout(await buyer(shop, "1"), pid, 1, STARS)
    order = await shop.checkout.checkout(await buyer(shop, "2", phone="+86 138 0000 0000"), pid, 1, STARS)
    assert order.status is OrderStatus.PENDING


# ---------------------------------------------------------------- limits


async def test_per_user_limit_counts_pending_and_paid_orders_in_the_rolling_window(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 10, user_limit=2, user_limit_hours=24)
    uid = await buyer(shop)
    first = await shop.checkout.checkout(uid, pid, 1, STARS)
    await pay(shop, first)
    await shop.checkout.checkout(uid, pid, 1, STARS)  # pending, still counts
    with pytest.raises(LimitExceeded) as e:
        await shop.checkout.checkout(uid, pid, 2, STARS)  # (the same 1 again would be the pending order)
    assert e.value.params["remaining"] == 0
    # another buyer is not affected
    await shop.checkout.checkout(await buyer(shop, "other"), pid, 2, STARS)
    clock.advance(hours=24, seconds=1)
    await shop.checkout.checkout(uid, pid, 2, STARS)


async def test_expired_and_cancelled_orders_do_not_count_against_the_user_limit(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 10, user_limit=1, user_limit_hours=24)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.orders.cancel(o.ref, user_id=uid, actor="user")
    await shop.checkout.checkout(uid, pid, 1, STARS)
    clock.advance(minutes=16)
    assert await shop.orders.expire_due() == 1
    await shop.checkout.checkout(uid, pid, 1, STARS)


async def test_daily_limit_per_product_resets_at_local_midnight(shop: Services, clock: FrozenClock) -> None:
    from zoneinfo import ZoneInfo

    from core.context import Context, ShopConfig

    clock._now = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    cn = Services(
        Context(shop.ctx.db, shop.ctx.vault, ShopConfig("CNY", timezone=ZoneInfo("Asia/Shanghai")), clock)
    )
    pid = await stocked(cn, 10, daily_limit=2)
    await cn.checkout.checkout(await buyer(cn, "a"), pid, 2, STARS)
    with pytest.raises(DailyLimitReached):
        await cn.checkout.checkout(await buyer(cn, "b"), pid, 1, STARS)
    clock.advance(hours=1, seconds=1)  # 00:00:01 next day in Shanghai, still 1 March in UTC
    await cn.checkout.checkout(await buyer(cn, "b"), pid, 1, STARS)


async def test_a_buyer_holds_at_most_three_unpaid_orders_at_a_time(shop: Services) -> None:
    pids = [await stocked(shop, 5, name=f"P{i}") for i in range(4)]
    uid = await buyer(shop)
    for pid in pids[:3]:
        await shop.checkout.checkout(uid, pid, 1, STARS)
    with pytest.raises(TooManyPendingOrders) as e:
        await shop.checkout.checkout(uid, pids[3], 1, STARS)
    assert e.value.params["count"] == 3 and await shop.stock.available(pids[3]) == 5
    await shop.checkout.checkout(await buyer(shop, "other"), pids[3], 1, STARS)  # others are not affected
