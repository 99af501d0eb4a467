"""The daily summary: yesterday's figures in the shop's time zone, sent once per date to the owners and the
admins with the reports power, due from SUMMARY_TIME on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.clock import FrozenClock
from core.db import Database
from core.models import STARS, DeliveryKind
from core.services import Services
from core.services.daily_summary import summary_due
from core.vault import Vault
from tests.admin_jobs import OPERATOR, OWNER, STAFF_ADMIN, add_staff, owned, recipients
from tests.conftest import buyer, pay, stocked

SHANGHAI = ZoneInfo("Asia/Shanghai")  # UTC+8: the shop's 1 January is 31 Dec 16:00 to 1 Jan 16:00 UTC
NINE = time(9, 0)
DAY = date(2026, 1, 1)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(_utc(2025, 12, 31, 15, 59))  # 23:59 on 31 December in Shanghai


@pytest.fixture
def shop(db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return owned(db, vault, clock, timezone=SHANGHAI)


def test_the_summary_of_yesterday_in_the_shops_time_zone_is_due_from_summary_time() -> None:
    assert summary_due(_utc(2026, 1, 2, 0, 59), SHANGHAI, NINE) is None  # 08:59 in Shanghai
    assert summary_due(_utc(2026, 1, 2, 1, 0), SHANGHAI, NINE) == DAY  # 09:00 on 2 January there
    # 23:30 UTC on 1 January is 07:30 on 2 January in Shanghai: 1 January's summary is not due yet
    assert summary_due(_utc(2026, 1, 1, 23, 30), SHANGHAI, NINE) is None
    assert summary_due(_utc(2026, 1, 2, 15, 59), SHANGHAI, NINE) == DAY  # all day after 09:00


async def _sell(shop: Services, who: str, currency: str = "USD", **product: object) -> str:
    pid = await stocked(shop, 0 if product.get("delivery_kind") is DeliveryKind.MANUAL else 3, **product)
    order = await shop.checkout.checkout(await buyer(shop, who), pid, 1, currency)
    await pay(shop, order, charge=f"ch-{who}")
    return order.ref


async def test_the_summary_counts_yesterday_in_the_shops_time_zone_and_what_waits_now(
    shop: Services, clock: FrozenClock
) -> None:
    before = await _sell(shop, "1", name="Old", price=300)  # 31 December in Shanghai
    clock.advance(minutes=2)  # 00:01 on 1 January in Shanghai (still 31 December in UTC)
    await _sell(shop, "2", STARS, name="Stars", price_stars=70)
    clock.advance(hours=23)  # 23:01 on 1 January in Shanghai
    await _sell(shop, "3", name="Steam", price=990, low_stock_threshold=2)
    await _sell(shop, "4", name="By hand", price=500, delivery_kind=DeliveryKind.MANUAL)
    await shop.refunds.request_refund(before, actor="cli")  # decided on 1 January
    clock.advance(hours=1)  # 00:01 on 2 January in Shanghai
    await _sell(shop, "5", name="Tomorrow", price=100)

    s = await shop.reports.day_summary(DAY)
    f = s.figures
    assert (f.first_day, f.last_day) == (DAY, DAY)
    assert f.orders == 3 and f.revenue == {"USD": 1490, STARS: 70}
    assert (f.refunds, f.refunded) == (1, {"USD": 300})
    assert f.new_buyers == 3  # buyer 1 paid before; buyer 5 the day after
    assert s.manual_waiting == 1
    assert [x.product_name for x in s.low] == ["Steam"]  # 2 left, threshold 2
    assert s.out == ()  # the manual product has no stock to run out of; none has 0 left
    assert s.week.days == 7 and s.week.last_day == DAY


async def test_the_summary_is_sent_once_per_date_to_owners_and_report_admins(
    shop: Services, clock: FrozenClock
) -> None:
    await add_staff(shop)
    clock.advance(hours=9, minutes=31)  # 09:30 on 1 January in Shanghai
    assert await shop.daily_summary.send_due(NINE) == 2
    assert await recipients(shop, "daily_summary") == [OWNER, STAFF_ADMIN]  # the operator: no reports
    assert OPERATOR not in await recipients(shop, "daily_summary")
    assert await shop.daily_summary.send_due(NINE) == 0
    assert await shop.daily_summary.send(date(2025, 12, 31)) == 0  # the same date, however asked


async def test_a_shop_started_before_summary_time_sends_nothing_until_then(
    shop: Services, clock: FrozenClock
) -> None:
    clock.advance(hours=8)  # 07:59 on 1 January in Shanghai
    assert await shop.daily_summary.send_due(NINE) == 0
    clock.advance(hours=1, minutes=1)
    assert await shop.daily_summary.send_due(NINE) == 1  # 31 December's, to the owner
    clock.advance(days=1)
    assert await shop.daily_summary.send_due(NINE) == 1  # 1 January's
    assert len(await recipients(shop, "daily_summary")) == 2
