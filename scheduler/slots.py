"""The calendar jobs' times: the payout run's crontab line (``PAYOUT_SCHEDULE``) and the daily summary's
hour (``SUMMARY_TIME``), both in the shop's time zone, and which slot of a crontab is the one due now.

A job that runs once per slot names its slot (``slot_name``) and lets the core claim it, so any number of
schedulers, restarts and ``keyshop jobs run`` make one run of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from scheduler.spec import Schedule

# APScheduler 3 counts weekdays from 0 = Monday where cron counts from 0 = Sunday: a number there would run
# the payout a day off what the owner meant. Weekdays are named instead (mon, tue, …, sun).
_NUMBERED_WEEKDAY = re.compile(r"\d")


def crontab(line: str, timezone: ZoneInfo) -> CronTrigger:
    """The trigger of a crontab line (minute hour day month weekday) in ``timezone``; a ValueError of one
    line saying what is wrong otherwise."""
    fields = line.split()
    if len(fields) != 5:
        raise ValueError(
            f"must be a crontab line of 5 fields (minute hour day month weekday) such as '0 10 * * mon', "
            f"not {len(fields)} fields"
        )
    if _NUMBERED_WEEKDAY.search(fields[4]):
        raise ValueError("name the weekday (mon, tue, wed, thu, fri, sat, sun; mon-fri), not a number")
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    except ValueError as e:
        raise ValueError(f"is not a valid crontab line: {' '.join(str(e).split())}") from None


def payout_trigger(schedule: Schedule) -> BaseTrigger:
    return crontab(schedule.payout_schedule, schedule.timezone)


def summary_trigger(schedule: Schedule) -> BaseTrigger:
    at = schedule.summary_time
    return CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=schedule.timezone)


def last_slot(trigger: BaseTrigger, now: datetime, within: timedelta) -> datetime | None:
    """The last time ``trigger`` fires at or before ``now``, if that is less than ``within`` ago."""
    last = None
    at = trigger.get_next_fire_time(None, now - within)
    while at is not None and at <= now:
        last = at
        # A second later in UTC: in the shop's zone, a time the clocks went back over (02:30, fold=1) plus a
        # second is the same time's first occurrence plus a second, an hour *earlier*, and the loop would
        # find this slot again for ever.
        at = trigger.get_next_fire_time(at, at.astimezone(UTC) + timedelta(seconds=1))
    return last


def slot_name(at: datetime) -> str:
    """How a slot is claimed (``job_claims.period``): its minute in UTC, e.g. ``2026-01-05T10:00Z``. A time
    of the shop's zone that comes twice when the clocks go back (02:30 in Berlin on the last Sunday of
    October) is one slot, named by its first occurrence: the crontab line meant it once, and a cron daemon
    runs it once."""
    return at.replace(fold=0).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
