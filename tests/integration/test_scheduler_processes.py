"""Two ``keyshop scheduler`` processes side by side on one database (SQLite and PostgreSQL), started
together so that their at-start runs race: 2,000 members due a reminder, a product under its low-stock
threshold, yesterday's summary unsent. Every reminder is written exactly once, the owner gets one summary
and one stock alert, and both processes did part of the work. Nothing is mocked: the processes are the
real command, the database the real one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import migrate
from core import tables as t
from core.context import Context, ShopConfig
from core.messages import DailySummary, MembershipReminder, StockAlert
from core.services import Services
from core.vault import Vault, new_key_spec
from tests.conftest import BACKENDS, PROCESSES, make_db, query, seed_memberships, stocked

pytestmark = PROCESSES

OWNER = 900_001
MEMBERS = 5000
WITHIN = 60.0


async def _scheduler(env: dict[str, str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "scheduler", cwd=cwd, env=env, stdout=out, stderr=out
        )


async def _count(services: Services, kind: str) -> int:
    q = select(func.count()).select_from(t.outbox).where(t.outbox.c.kind == kind)
    return int((await query(services, q))[0][0])


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_scheduler_processes_on_one_database_never_send_anything_twice(
    backend: str, tmp_path: Path
) -> None:
    db = await make_db(backend, tmp_path, create=False)
    await migrate.upgrade(db)  # as `keyshop db upgrade` would; the processes find nothing to migrate
    spec = new_key_spec()
    now = datetime.now(UTC)  # the processes run on the real clock
    services = Services(Context(db, Vault.from_spec(spec), ShopConfig()))
    try:
        refs = await seed_memberships(services, MEMBERS, ends_at=now + timedelta(hours=20))
        await stocked(services, 2, low_stock_threshold=5)
        env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "REDIS_URL")}
        env.update(
            DATABASE_URL=db.url.render_as_string(hide_password=False),
            VAULT_KEYS=spec,
            ADMIN_IDS=str(OWNER),
            SUMMARY_TIME="00:00",  # passed today: yesterday's summary is due at start
            DATA_DIR=str(tmp_path / "data"),
            LOG_LEVEL="INFO",
        )
        procs = [await _scheduler(env, tmp_path, tmp_path / f"scheduler-{i}.log") for i in range(2)]
        try:
            deadline = time.monotonic() + WITHIN

            async def done() -> bool:
                ran = await query(
                    services, select(t.job_runs.c.runs).where(t.job_runs.c.name == "remind_memberships")
                )
                return (
                    bool(ran)
                    and ran[0][0] >= 2  # both processes ran their at-start round
                    and await _count(services, MembershipReminder.KIND) >= MEMBERS
                    and await _count(services, DailySummary.KIND) >= 1
                    and await _count(services, StockAlert.KIND) >= 1
                )

            while not await done():
                assert time.monotonic() < deadline, "the schedulers did not do the work in time"
                assert all(p.returncode is None for p in procs), "a scheduler exited"
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # time for a duplicate to show, if any were coming
        finally:
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(p.wait(), 20) for p in procs]
        logs = [(tmp_path / f"scheduler-{i}.log").read_text() for i in range(2)]
        assert codes == [0, 0], logs
        assert not [line for log in logs for line in log.splitlines() if " ERROR " in line], logs

        rows = await query(
            services,
            select(t.outbox.c.payload).where(t.outbox.c.kind == MembershipReminder.KIND),
        )
        sent = sorted(r.payload["order_ref"] for r in rows)
        assert sent == sorted(refs)  # each member once: none missing, none twice
        assert {r.payload["stage"] for r in rows} == {"d1"}
        recorded = await query(services, select(t.reminders.c.stage, t.reminders.c.skipped))
        expected = [("d1", False)] * MEMBERS + [("d3", True)] * MEMBERS  # d3 passed: skipped, not sent
        assert sorted((r.stage, r.skipped) for r in recorded) == expected
        assert await _count(services, DailySummary.KIND) == 1  # the one owner, once
        assert await _count(services, StockAlert.KIND) == 1
    finally:
        await db.dispose()
