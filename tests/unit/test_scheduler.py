from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from core.clock import FrozenClock
from core.models import STARS, OrderStatus
from core.services import Services
from scheduler.jobs import (
    build_scheduler,
    clear_abandoned_imports,
    expire_reservations,
    reconcile_payments,
    settle_commissions,
)
from tests.conftest import buyer, stocked


async def test_the_sweeper_job_expires_unpaid_orders_and_restocks(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    assert await expire_reservations(shop) == 0
    clock.advance(minutes=16)
    assert await expire_reservations(shop) == 1
    assert (await shop.orders.get(o.ref)).status is OrderStatus.EXPIRED
    assert await shop.stock.available(pid) == 2
    assert await clear_abandoned_imports(shop) == 0


async def test_the_scheduler_runs_every_sweeper_job_one_at_a_time(shop: Services) -> None:
    sched = build_scheduler(shop)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {
        "expire_reservations",
        "clear_abandoned_imports",
        "process_payment_notices",
        "settle_commissions",
    }
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
    settle = jobs["settle_commissions"]
    assert settle.func is settle_commissions
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


async def test_the_scheduler_reconciles_the_payment_ledger_every_five_minutes_from_the_start(
    shop: Services,
) -> None:
    ledger = _Ledger()
    before = datetime.now(UTC)
    sched = build_scheduler(shop, reconciler=ledger)
    job = sched.get_job("reconcile_stars")
    assert job is not None and job.func is reconcile_payments and job.args == (ledger,)
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(minutes=5)
    assert job.max_instances == 1 and job.coalesce
    assert before <= job.next_run_time <= datetime.now(UTC)  # once right after start
    assert {j.id for j in sched.get_jobs()} == {
        "expire_reservations",
        "clear_abandoned_imports",
        "process_payment_notices",
        "settle_commissions",
        "reconcile_stars",
    }
    await reconcile_payments(ledger)
    assert ledger.runs == 1


async def test_a_reconciliation_cut_short_by_shutdown_ends_quietly() -> None:
    ledger = _Ledger(interrupted=True)
    await reconcile_payments(ledger)  # no CancelledError escapes: a clean stop stays clean
    assert ledger.runs == 1


def test_the_scheduler_imports_no_bot_framework() -> None:
    code = "import sys, scheduler.jobs; print(' '.join({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert "core" in loaded and not loaded & {"aiogram", "aiohttp", "handlers", "bot"}
