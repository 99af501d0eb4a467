"""Sales reports and the audit trail read back, on SQLite and PostgreSQL (services: reports, audit)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.errors import InvalidInput, OrderNotFound
from core.models import STARS, Order
from core.services import Services
from core.vault import Vault
from tests.conftest import buyer, stocked

SHANGHAI = ZoneInfo("Asia/Shanghai")  # UTC+8, no DST
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # 20:00 on 10 January in Shanghai


@pytest.fixture
def shop(any_db: Database, vault: Vault) -> Services:
    config = ShopConfig(currency="USD", timezone=SHANGHAI)
    return Services(Context(db=any_db, vault=vault, config=config, clock=FrozenClock(NOW)))


def _at(shop: Services, when: datetime) -> None:
    clock = shop.ctx.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(seconds=(when - clock.now()).total_seconds())


async def _sale(
    shop: Services, when: datetime, pid: int, uid: int, *, qty: int = 1, currency: str = STARS
) -> Order:
    _at(shop, when)
    order = await shop.checkout.checkout(uid, pid, qty, currency)
    await shop.payments.confirm_payment(
        "telegram", f"ch-{order.ref}", order.ref, order.amount, currency, payer_id=uid
    )
    _at(shop, NOW)
    return order


async def test_a_day_is_the_shops_day_in_its_time_zone_not_utcs(shop: Services) -> None:
    pid = await stocked(shop, 10)
    uid = await buyer(shop)
    # 01:00 on 10 January in Shanghai, still 9 January in UTC: today's
    await _sale(shop, datetime(2026, 1, 9, 17, 0, tzinfo=UTC), pid, uid)
    # 23:30 on 9 January in Shanghai, which UTC calls the same day as the sale above: yesterday's
    await _sale(shop, datetime(2026, 1, 9, 15, 30, tzinfo=UTC), pid, uid, qty=2)

    today = await shop.reports.sales(1)
    assert (today.first_day, today.last_day) == (date(2026, 1, 10), date(2026, 1, 10))
    assert (today.orders, today.units, today.revenue) == (1, 1, {STARS: 50})

    week = await shop.reports.sales(7)
    assert (week.first_day, week.last_day, week.days) == (date(2026, 1, 4), date(2026, 1, 10), 7)
    assert (week.orders, week.units, week.revenue) == (2, 3, {STARS: 150})
    by_day = {d.day: (d.orders, d.units, d.revenue) for d in week.per_day}
    assert by_day[date(2026, 1, 9)] == (1, 2, {STARS: 100})
    assert by_day[date(2026, 1, 10)] == (1, 1, {STARS: 50})
    assert sum(d.orders for d in week.per_day) == week.orders


async def test_a_day_that_loses_an_hour_to_daylight_saving_is_still_one_day(
    any_db: Database, vault: Vault
) -> None:
    paris = ZoneInfo("Europe/Paris")  # 29 March 2026: clocks go from 02:00 to 03:00
    config = ShopConfig(currency="USD", timezone=paris)
    now = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    shop = Services(Context(db=any_db, vault=vault, config=config, clock=FrozenClock(now)))
    pid = await stocked(shop, 5)
    uid = await buyer(shop)
    for when in (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 3, 29, 21, 30, tzinfo=UTC)):
        _at(shop, when)  # 00:30 on the 29th, and 23:30 on the 29th (UTC+2 by then)
        order = await shop.checkout.checkout(uid, pid, 1, STARS)
        await shop.payments.confirm_payment("telegram", order.ref, order.ref, order.amount, STARS)
    _at(shop, now)
    report = await shop.reports.sales(7)
    assert {d.day: d.orders for d in report.per_day}[date(2026, 3, 29)] == 2


async def test_refunds_count_on_the_day_they_are_decided_and_come_off_net_revenue_not_sales(
    shop: Services,
) -> None:
    pid = await stocked(shop, 10)
    uid = await buyer(shop)
    old = await _sale(shop, datetime(2026, 1, 5, 4, 0, tzinfo=UTC), pid, uid)
    new = await _sale(shop, datetime(2026, 1, 10, 3, 0, tzinfo=UTC), pid, uid, qty=2)
    await shop.refunds.request_refund(old.ref, actor="telegram:1")  # decided today (NOW)
    await shop.refunds.request_refund(new.ref, actor="telegram:1")

    today = await shop.reports.sales(1)
    # today's sale stays a sale (its day's figures do not change), and both refunds are today's
    assert (today.orders, today.units, today.revenue) == (1, 2, {STARS: 100})
    assert (today.refunds, today.refunded, today.net) == (2, {STARS: 150}, {STARS: -50})
    week = await shop.reports.sales(7)
    assert (week.orders, week.revenue, week.refunds, week.net) == (2, {STARS: 150}, 2, {STARS: 0})


async def test_revenue_is_kept_per_currency_and_unpaid_orders_are_not_sales(shop: Services) -> None:
    pid = await stocked(shop, 10)
    uid = await buyer(shop)
    await _sale(shop, datetime(2026, 1, 10, 1, 0, tzinfo=UTC), pid, uid, currency=STARS)
    await _sale(shop, datetime(2026, 1, 10, 2, 0, tzinfo=UTC), pid, uid, qty=3, currency="USD")
    await shop.checkout.checkout(uid, pid, 1, STARS)  # pending, never paid
    report = await shop.reports.sales(1)
    assert report.revenue == {STARS: 50, "USD": 3 * 990}
    assert (report.orders, report.units) == (2, 4)


async def test_new_buyers_are_those_whose_first_paid_order_falls_in_the_period(shop: Services) -> None:
    pid = await stocked(shop, 10)
    regular, first_timer, window_shopper = [await buyer(shop, x) for x in ("1", "2", "3")]
    await _sale(shop, datetime(2025, 12, 1, 4, 0, tzinfo=UTC), pid, regular)
    await _sale(shop, datetime(2026, 1, 10, 4, 0, tzinfo=UTC), pid, regular)
    await _sale(shop, datetime(2026, 1, 10, 5, 0, tzinfo=UTC), pid, first_timer)
    await _sale(shop, datetime(2026, 1, 10, 6, 0, tzinfo=UTC), pid, first_timer)
    await shop.checkout.checkout(window_shopper, pid, 1, STARS)
    assert (await shop.reports.sales(1)).new_buyers == 1
    assert (await shop.reports.sales(30)).new_buyers == 1  # the regular's first order is older still


async def test_top_products_are_ranked_by_units_and_stock_left_is_every_products_now(
    shop: Services,
) -> None:
    steam = await stocked(shop, 10, name="Steam 10")
    netflix = await stocked(shop, 10, name="网飞会员 月卡")
    uid = await buyer(shop)
    await _sale(shop, datetime(2026, 1, 10, 1, 0, tzinfo=UTC), steam, uid)
    await _sale(shop, datetime(2026, 1, 10, 2, 0, tzinfo=UTC), netflix, uid, qty=3)
    report = await shop.reports.sales(1)
    assert [(p.name, p.units, p.orders) for p in report.top] == [("网飞会员 月卡", 3, 1), ("Steam 10", 1, 1)]
    assert {s.product_name: s.available for s in report.stock} == {"Steam 10": 9, "网飞会员 月卡": 7}


async def test_a_report_covers_one_seven_or_thirty_days_only(shop: Services) -> None:
    for days in (0, 2, 31, -1):
        with pytest.raises(InvalidInput):
            await shop.reports.sales(days)


async def test_the_audit_trail_pages_newest_first_and_filters_by_order_and_by_actor(
    shop: Services,
) -> None:
    pid = await stocked(shop, 10, name="Steam <10>")
    uid = await buyer(shop)
    one = await _sale(shop, datetime(2026, 1, 10, 1, 0, tzinfo=UTC), pid, uid)
    two = await _sale(shop, datetime(2026, 1, 10, 2, 0, tzinfo=UTC), pid, uid)
    revealed = await shop.orders.reveal(one.ref, user_id=None, actor="telegram:42", reason="admin")
    await shop.catalog.update_product(pid, actor="cli", price=1000)

    page = await shop.audit.recent(limit=3)
    assert [e.action for e in page.entries] == ["product_updated", "keys_revealed", "keys_delivered"]
    assert page.has_more and page.entries[0].id > page.entries[1].id > page.entries[2].id
    assert page.entries[0].product_name == "Steam <10>"
    rest = await shop.audit.recent(offset=3, limit=1000)
    assert not rest.has_more and {e.id for e in rest.entries}.isdisjoint(e.id for e in page.entries)

    reveal = (await shop.audit.recent(actor="telegram:42")).entries
    assert [(e.action, e.order_ref, e.product_id) for e in reveal] == [("keys_revealed", one.ref, pid)]
    assert all(k not in str(dataclasses.asdict(e)) for e in reveal for k in revealed.keys)
    mine = (await shop.audit.recent(order_ref=two.ref)).entries
    assert mine and {e.order_ref for e in mine} == {two.ref}
    with pytest.raises(OrderNotFound):
        await shop.audit.recent(order_ref="NOPE")
    with pytest.raises(InvalidInput):
        await shop.audit.recent(limit=0)
