"""The scheduler's record of its runs, and its once-per-period claims."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import insert, select

from core import tables as t
from core.clock import FrozenClock
from core.services import Services
from scheduler.runner import Runs
from scheduler.spec import Job, JobContext, Schedule
from tests.conftest import buyer, in_write, sql


def _job(fn: object, name: str = "probe") -> Job:
    return Job(name, fn, lambda s: None, "a probe")  # type: ignore[arg-type, return-value]


async def test_every_run_is_recorded_with_its_result_and_a_failure_with_its_error(shop: Services) -> None:
    calls = []

    async def works(ctx: JobContext) -> int:
        calls.append(1)
        return 7

    async def breaks(ctx: JobContext) -> int:
        raise RuntimeError("disk on fire")

    runs = Runs(JobContext(shop))
    assert await runs.run(_job(works)) == 7
    assert await runs.run(_job(breaks)) is None  # logged and recorded, never raised into the scheduler
    (row,) = await shop.jobs.runs()
    assert (row.name, row.runs, row.failures, row.last_ok) == ("probe", 2, 1, False)
    assert row.last_error == "RuntimeError: disk on fire" and row.last_result is None


async def test_a_failing_job_logs_when_it_starts_failing_and_when_it_recovers_not_every_tick(
    shop: Services, caplog: pytest.LogCaptureFixture
) -> None:
    broken = True

    async def flaky(ctx: JobContext) -> int:
        if broken:
            raise RuntimeError("disk on fire")  # a job's own trouble (the database away: test_resilience)
        return 0

    runs = Runs(JobContext(shop))
    with caplog.at_level(logging.INFO, logger="scheduler.runner"):
        for _ in range(5):
            await runs.run(_job(flaky))
        broken = False
        await runs.run(_job(flaky))
        await runs.run(_job(flaky))
    lines = [r.getMessage() for r in caplog.records if r.name == "scheduler.runner"]
    assert len(lines) == 2 and "failed" in lines[0] and "runs again" in lines[1]


async def test_a_period_is_claimed_once_whoever_asks(shop: Services, clock: FrozenClock) -> None:
    def claim(period: str) -> object:
        def fn(uow: object) -> bool:
            return uow.repo.claims.claim("daily_summary", period, clock.now())  # type: ignore[attr-defined]

        return fn

    assert await in_write(shop, claim("2026-11-22")) is True  # type: ignore[arg-type]
    assert await in_write(shop, claim("2026-11-22")) is False  # type: ignore[arg-type]
    assert await in_write(shop, claim("2026-11-23")) is True  # type: ignore[arg-type]


async def test_sent_messages_older_than_the_retention_are_deleted_and_the_rest_kept(
    shop: Services, clock: FrozenClock
) -> None:
    from core.messages import KeysDelivered
    from scheduler.jobs import purge_sent_messages

    uid = await buyer(shop)
    now = clock.now()
    row = {"user_id": uid, "kind": KeysDelivered.KIND, "payload": {"order_ref": "X"}, "attempts": 0}
    row |= {"next_attempt_at": now, "created_at": now}
    await sql(
        shop,
        insert(t.outbox),
        [
            row | {"status": "sent", "sent_at": now},
            row | {"status": "sent", "sent_at": now},
            row | {"status": "failed", "sent_at": None},
            row | {"status": "pending", "sent_at": None},
        ],
    )
    ctx = JobContext(shop, schedule=Schedule(outbox_retention_days=30))
    clock.advance(days=29)
    assert await purge_sent_messages(ctx) == 0
    clock.advance(days=2)
    assert await purge_sent_messages(ctx) == 2
    left = await sql(shop, select(t.outbox.c.status).order_by(t.outbox.c.id))
    assert [r[0] for r in left] == ["failed", "pending"]  # failures are kept for the record
    assert await purge_sent_messages(JobContext(shop, schedule=Schedule(outbox_retention_days=0))) == 0
