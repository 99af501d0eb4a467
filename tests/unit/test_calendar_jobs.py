"""The calendar jobs' scheduling: PAYOUT_SCHEDULE slots (the last one within a day runs once, an older one
not at all), SUMMARY_TIME in the shop's time zone, and the low-stock check every minute."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.clock import FrozenClock
from core.db import Database
from core.services import Services
from core.vault import Vault
from scheduler.jobs import PAYOUT_CATCH_UP, daily_summary, payout_run
from scheduler.runner import build_scheduler
from scheduler.slots import crontab, last_slot, slot_name
from scheduler.spec import JobContext, Schedule
from tests.admin_jobs import credit, owned
from tests.conftest import buyer

MONDAY_10 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
WEEKLY = crontab("0 10 * * mon", ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (MONDAY_10, MONDAY_10),  # the job fires at its slot
        (MONDAY_10 + timedelta(seconds=3), MONDAY_10),
        (MONDAY_10 + timedelta(hours=23, minutes=59), MONDAY_10),  # started within a day after it
        (MONDAY_10 + timedelta(hours=24, minutes=1), None),  # too late: not run
        (MONDAY_10 - timedelta(seconds=1), None),  # the one before is a week old
    ],
)
def test_the_slot_due_is_the_last_scheduled_time_within_the_catch_up_window(
    now: datetime, slot: datetime | None
) -> None:
    assert last_slot(WEEKLY, now, PAYOUT_CATCH_UP) == slot


def test_a_slot_is_named_by_its_minute_in_utc_whatever_the_shops_time_zone() -> None:
    shanghai = crontab("30 18 * * fri", ZoneInfo("Asia/Shanghai"))
    at = last_slot(shanghai, datetime(2026, 1, 9, 12, 0, tzinfo=UTC), PAYOUT_CATCH_UP)
    assert at is not None and slot_name(at) == "2026-01-09T10:30Z"


class Counted(BaseTrigger):
    """A trigger that refuses to be asked more than ``limit`` times: a loop over it that never ends fails
    the test instead of hanging it."""

    def __init__(self, trigger: BaseTrigger, limit: int = 100) -> None:
        self.trigger, self.left = trigger, limit

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime | None:
        self.left -= 1
        assert self.left >= 0, "asked for the next fire time again and again"
        return self.trigger.get_next_fire_time(previous, now)


BERLIN = ZoneInfo("Europe/Berlin")
# 2026-10-25, clocks go back in Berlin: 02:30 comes twice, at 00:30 UTC (CEST) and at 01:30 UTC (CET)
FALL_BACK_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("minutes_after", [1, 59, 61, 23 * 60])
def test_the_slot_due_is_found_after_a_wall_clock_time_that_came_twice(minutes_after: int) -> None:
    trigger = Counted(crontab("30 2 * * sun", BERLIN))
    now = FALL_BACK_0230[0] + timedelta(minutes=minutes_after)
    at = last_slot(trigger, now, PAYOUT_CATCH_UP)
    assert at is not None and at <= now and now - at < PAYOUT_CATCH_UP


def test_a_wall_clock_time_that_came_twice_is_one_slot() -> None:
    trigger = crontab("30 2 * * sun", BERLIN)
    first, second = (
        last_slot(Counted(trigger), at + timedelta(minutes=1), PAYOUT_CATCH_UP) for at in FALL_BACK_0230
    )
    assert first is not None and second is not None
    assert slot_name(first) == slot_name(second) == "2026-10-25T00:30Z"


async def test_the_payout_run_goes_once_on_the_night_the_clocks_go_back(
    shop: Services, clock: FrozenClock
) -> None:
    await credit(shop, await buyer(shop, "62"), 900)
    ctx = JobContext(shop, schedule=Schedule(BERLIN, payout_schedule="30 2 * * sun"))
    clock.advance(seconds=(FALL_BACK_0230[0] - clock.now()).total_seconds() + 1)  # 02:30 CEST: it fires
    assert await payout_run(ctx) == 1
    clock.advance(hours=1)  # 02:30 CET: the scheduler fires again
    assert await payout_run(ctx) == 0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY_10 + timedelta(hours=2))


@pytest.fixture
def shop(db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return owned(db, vault, clock)


async def test_a_payout_slot_missed_within_a_day_runs_once_at_start_and_an_older_one_never(
    shop: Services, clock: FrozenClock
) -> None:
    await credit(shop, await buyer(shop, "61"), 900)
    ctx = JobContext(shop)  # default schedule: Mondays 10:00 UTC
    clock.advance(days=1)  # started on Tuesday at 12:00: Monday's slot is over a day old
    assert await payout_run(ctx) == 0
    clock.advance(days=-1)  # started on Monday at 12:00 instead: the 10:00 slot
    assert await payout_run(ctx) == 1
    assert await payout_run(ctx) == 0  # restarted: the slot ran
    clock.advance(days=7, hours=-2)  # the next Monday, 10:00
    assert await payout_run(ctx) == 1


async def test_the_summary_job_sends_yesterdays_once_from_summary_time(
    shop: Services, clock: FrozenClock
) -> None:
    ctx = JobContext(shop, schedule=Schedule(summary_time=time(13, 0)))
    assert await daily_summary(ctx) == 0  # 12:00: due at 13:00
    clock.advance(hours=1)
    assert await daily_summary(ctx) == 1
    assert await daily_summary(ctx) == 0


def test_the_calendar_jobs_run_at_their_times_in_the_shops_time_zone(shop: Services) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    before = datetime.now(UTC)
    sched = build_scheduler(JobContext(shop, schedule=Schedule(tz, time(7, 30), "15 18 * * fri")))
    summary, payout, stock = (sched.get_job(n) for n in ("daily_summary", "payout_run", "stock_alerts"))
    assert isinstance(summary.trigger, CronTrigger) and summary.trigger.timezone == tz
    assert str(summary.trigger.fields[5]) == "7" and str(summary.trigger.fields[6]) == "30"
    assert isinstance(payout.trigger, CronTrigger) and str(payout.trigger) == (
        "cron[month='*', day='*', day_of_week='fri', hour='18', minute='15']"
    )
    assert isinstance(stock.trigger, IntervalTrigger) and stock.trigger.interval == timedelta(minutes=1)
    # both calendar jobs also look once at start (a slot or a summary missed while the shop was down)
    assert before <= summary.next_run_time <= datetime.now(UTC)
    assert before <= payout.next_run_time <= datetime.now(UTC)
