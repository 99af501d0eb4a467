from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from core.clock import FrozenClock
from core.models import STARS, OrderStatus
from core.services import Services
from scheduler.jobs import (
    clear_abandoned_imports,
    expire_reservations,
    reconcile_payments,
    settle_commissions,
)
from scheduler.runner import build_scheduler
from scheduler.spec import JobContext, Schedule
from tests.conftest import buyer, stocked


async def test_the_sweeper_job_expires_unpaid_orders_and_restocks(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    ctx = JobContext(shop)
    assert await expire_reservations(ctx) == 0
    clock.advance(minutes=16)
    assert await expire_reservations(ctx) == 1
    assert (await shop.orders.get(o.ref)).status is OrderStatus.EXPIRED
    assert await shop.stock.available(pid) == 2
    assert await clear_abandoned_imports(ctx) == 0


async def test_every_job_runs_one_at_a_time_and_missed_runs_coalesce(shop: Services) -> None:
    sched = build_scheduler(JobContext(shop))
    jobs = {j.id: j for j in sched.get_jobs()}
    assert {
        "expire_reservations",
        "clear_abandoned_imports",
        "process_payment_notices",
        "settle_commissions",
    } <= set(jobs)
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
    settle = jobs["settle_commissions"]
    assert isinstance(settle.trigger, IntervalTrigger) and settle.trigger.interval == timedelta(hours=1)


class _Ledger:
    """A channel's payment ledger, as the scheduler sees it."""

    def __init__(self, interrupted: bool = False) -> None:
        self.runs, self.interrupted = 0, interrupted

    async def reconcile(self) -> int:
        self.runs += 1
        if self.interrupted:
            raise asyncio.CancelledError
        return 0


async def test_the_stars_ledger_is_reconciled_every_five_minutes_from_the_start_only_with_a_ledger(
    shop: Services,
) -> None:
    assert build_scheduler(JobContext(shop)).get_job("reconcile_stars") is None
    ledger = _Ledger()
    before = datetime.now(UTC)
    ctx = JobContext(shop, reconciler=ledger)
    job = build_scheduler(ctx).get_job("reconcile_stars")
    assert job is not None
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(minutes=5)
    assert job.max_instances == 1 and job.coalesce
    assert before <= job.next_run_time <= datetime.now(UTC)  # once right after start
    assert await reconcile_payments(ctx) == 0
    assert ledger.runs == 1


async def test_a_job_cut_short_by_shutdown_ends_quietly(shop: Services) -> None:
    from scheduler.jobs import JOBS
    from scheduler.runner import Runs

    ledger = _Ledger(interrupted=True)
    (job,) = [j for j in JOBS if j.name == "reconcile_stars"]
    # no CancelledError escapes: APScheduler would log a cancelled job as a failure
    assert await Runs(JobContext(shop, reconciler=ledger)).run(job) is None
    assert ledger.runs == 1


async def test_settling_is_a_job(shop: Services) -> None:
    assert await settle_commissions(JobContext(shop)) == 0


def test_the_scheduler_imports_no_bot_framework() -> None:
    code = "import sys, scheduler.runner; print(' '.join({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "core" in loaded and not loaded & {"aiogram", "aiohttp", "handlers", "bot"}


async def test_jobs_running_at_start_and_cut_short_by_shutdown_end_quietly(
    shop: Services, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    all_started = asyncio.Event()

    def hanging(name: str) -> Callable[..., Awaitable[Any]]:
        async def hang(*_: object) -> Any:
            started.append(name)
            if len(started) == 3:
                all_started.set()
            await asyncio.Event().wait()  # still running when the scheduler shuts down

        return hang

    monkeypatch.setattr(shop.stock, "abandon_stale_imports", hanging("imports"))
    monkeypatch.setattr(shop.payout_run, "run", hanging("payout"))
    monkeypatch.setattr(shop.daily_summary, "send_due", hanging("summary"))
    sched = build_scheduler(JobContext(shop, schedule=Schedule(payout_schedule="* * * * *")))
    sched.start()
    await asyncio.wait_for(all_started.wait(), 10)
    sched.shutdown(wait=False)  # APScheduler cancels the jobs still running
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(started) == ["imports", "payout", "summary"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_wechat_pushes_are_forgotten_a_day_after_they_came(shop: Services, clock: FrozenClock) -> None:
    from scheduler.jobs import forget_wechat_pushes

    assert await shop.wechat_inbound.take("msg:1") is True
    assert await forget_wechat_pushes(JobContext(shop)) == 0
    clock.advance(days=1, seconds=1)
    assert await forget_wechat_pushes(JobContext(shop)) == 1
    assert await shop.wechat_inbound.take("msg:1") is True  # a day on, the key is free again
