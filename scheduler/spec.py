"""What a job is: a name, a thin wrapper around one core call, and when it runs.

Jobs are declared once (``scheduler.jobs.JOBS``) and used three ways: by the scheduler that runs them
(``build_scheduler``), by ``keyshop jobs list`` (name, schedule, last and next run) and by ``keyshop jobs run
NAME`` (once, now, then exit). A job never keeps a due date of its own: what is due lives in the shop's
tables (orders, commissions, reminders), so a restart, a second scheduler or a cron run finds the same work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import time
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from core.resilience import Dependency
from core.services import Services
from core.services.notices import NoticeOutcome

# Told how a round of payment notices went: how many were processed now, and those still failing after
# NOTICE_ALERT_AFTER attempts (the channel wakes its sender and alerts the admins).
NoticeReport = Callable[[int, list[NoticeOutcome]], Awaitable[None]]


class WechatPayRound(Protocol):
    async def run(self) -> int:
        """Ask WeChat Pay about the orders it has open; how many were settled."""
        ...


class Reconciler(Protocol):
    """A channel's payment ledger (Telegram's Stars ledger today): ``reconcile`` confirms every payment it
    holds that the shop has not recorded yet and returns how many were new."""

    async def reconcile(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Schedule:
    """When the calendar jobs run (from settings; the composition root builds it)."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # SHOP_TIMEZONE
    summary_time: time = time(9, 0)  # SUMMARY_TIME, in ``timezone``
    payout_schedule: str = "0 10 * * mon"  # PAYOUT_SCHEDULE, a crontab line in ``timezone``
    outbox_retention_days: int = 30  # OUTBOX_RETENTION_DAYS: sent outbox rows older than this are deleted


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job may use: the core services, and the channel's pieces the scheduler is given."""

    services: Services
    schedule: Schedule = field(default_factory=Schedule)
    reconciler: Reconciler | None = None
    notice_report: NoticeReport | None = None
    wechatpay: WechatPayRound | None = None  # with WeChat Pay: one reconciliation round (WechatPayReconciler)
    # Whether the database answers: shared with the process's other users of it (the storefront's), so
    # that an outage is logged once for all of them, not once per job.
    database: Dependency = field(default_factory=lambda: Dependency("database"))


# The settings that give a job what it ``needs``, as ``keyshop jobs`` names them.
NEEDS = {"reconciler": "BOT_TOKEN", "wechatpay": "WECHATPAY_*"}


@dataclass(frozen=True, slots=True)
class Job:
    """One periodic job. ``run`` returns how many things it handled (rows, messages): ``keyshop jobs``
    shows it and the job_runs table keeps it. ``needs``: a piece of the JobContext without which the job
    is not scheduled (the Stars ledger without a bot)."""

    name: str
    run: Callable[[JobContext], Awaitable[int]]
    trigger: Callable[[Schedule], BaseTrigger]
    about: str
    needs: str | None = None
    at_start: bool = False  # also run once right after start (work missed while the shop was down)
