"""The scheduler: SCHEDULER (run the jobs inside ``keyshop run``), OUTBOX_RETENTION_DAYS."""

from __future__ import annotations

from pydantic import Field

from bot.settings.base import ConcernSettings


class SchedulerSettings(ConcernSettings):
    scheduler: bool = Field(
        True,
        description="Run the scheduled jobs inside `keyshop run` (off: only where `keyshop scheduler` runs).",
    )
    outbox_retention_days: int = Field(
        30, ge=0, le=3650, description="Days sent outbox messages are kept (0: for ever)."
    )
