"""The scheduler: SCHEDULER (run the jobs inside ``keyshop run``), SUMMARY_TIME (the daily summary) and
PAYOUT_SCHEDULE (the payout run), both in SHOP_TIMEZONE, and OUTBOX_RETENTION_DAYS. The issue named these
variables before concerns took prefixes, so this concern has none."""

from __future__ import annotations

import re
from datetime import time
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings
from scheduler.slots import crontab

_HH_MM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


class SchedulerSettings(ConcernSettings):
    scheduler: bool = Field(
        True,
        description="Run the scheduled jobs inside `keyshop run` (off: only where `keyshop scheduler` runs).",
    )
    summary_time: time = Field(
        time(9, 0),
        description="HH:MM (24-hour) in SHOP_TIMEZONE when yesterday's summary goes to the owners.",
    )
    payout_schedule: str = Field(
        "0 10 * * mon",
        description="Crontab line (minute hour day month weekday, weekdays named) in SHOP_TIMEZONE of the "
        "payout run.",
    )
    outbox_retention_days: int = Field(
        30, ge=0, le=3650, description="Days sent outbox messages are kept (0: for ever)."
    )

    @field_validator("summary_time", mode="before")
    @classmethod
    def _check_time(cls, v: object) -> object:
        if isinstance(v, str):
            found = _HH_MM.fullmatch(v.strip())
            if found is None:
                raise ValueError("must be a time of day as HH:MM, 24-hour, such as 09:00 or 21:30")
            return time(int(found[1]), int(found[2]))
        return v

    @field_validator("payout_schedule")
    @classmethod
    def _check_schedule(cls, v: str) -> str:
        crontab(v, ZoneInfo("UTC"))  # the time zone does not change what is valid
        return " ".join(v.split())
