"""Two schedulers on one database (two connection pools), on SQLite and PostgreSQL, running the admins' jobs
at the same moment: one stock alert per crossing, one daily summary per date, one payout run per slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import select

from core import tables as t
from core.clock import FrozenClock
from core.db import Database
from core.models import STARS
from core.services import Services
from core.vault import Vault
from tests.admin_jobs import OWNER, STAFF_ADMIN, add_staff, credit, owned, recipients, sent
from tests.conftest import buyer, query, stocked

ROUNDS = 5


@pytest.fixture
def one(any_db: Database, vault: Vault, clock: FrozenClock) -> Services:
    return owned(any_db, vault, clock)


@pytest.fixture
async def two(any_db: Database, vault: Vault, clock: FrozenClock) -> AsyncIterator[Services]:
    """A second scheduler's services: its own connection pool on the same database."""
    db = Database(any_db.url, pool_size=10)
    yield owned(db, vault, clock)
    await db.dispose()


async def test_two_schedulers_alert_a_stock_crossing_once(one: Services, two: Services) -> None:
    await add_staff(one)
    pids = [await stocked(one, 3, name=f"P{i}", low_stock_threshold=2) for i in range(3)]
    # Both pools connected first, so that neither run is held up by connecting while the other works.
    assert await asyncio.gather(one.stock_alerts.check(), two.stock_alerts.check()) == [0, 0]
    for i, pid in enumerate(pids):
        await one.checkout.checkout(await buyer(one, str(1000 + i)), pid, 1 + i, STARS)  # low, low, out
    for _ in range(ROUNDS):
        await asyncio.gather(one.stock_alerts.check(), two.stock_alerts.check())
    alerts = sorted((who, f["product_id"], f["level"]) for who, _, f in await sent(one, "stock_alert"))
    levels = {pids[0]: "low", pids[1]: "low", pids[2]: "out"}
    # the operator has no scope: every product is theirs
    assert alerts == sorted((who, p, lv) for who in (OWNER, STAFF_ADMIN, "300") for p, lv in levels.items())
    rows = await query(one, select(t.stock_alerts.c.product_id, t.stock_alerts.c.level))
    assert dict(rows) == levels


async def test_two_schedulers_send_a_days_summary_once(one: Services, two: Services) -> None:
    await add_staff(one)
    day = date(2025, 12, 31)
    written = await asyncio.gather(*(s.daily_summary.send(day) for s in (one, two, one, two)))
    assert sorted(written) == [0, 0, 0, 2]
    assert await recipients(one, "daily_summary") == [OWNER, STAFF_ADMIN]


async def test_two_schedulers_make_one_payout_run_per_slot(one: Services, two: Services) -> None:
    await add_staff(one)
    for ext in ("11", "12"):
        await credit(one, await buyer(one, ext), 900)
    asked = await buyer(one, "13")
    await credit(one, asked, 900)
    await one.payouts.request(asked, "USD", "IBAN", key="k13")
    runs = await asyncio.gather(*(s.payout_run.run("2026-01-05T10:00Z") for s in (one, two, one, two)))
    assert sorted(r.ran for r in runs) == [False, False, False, True]
    assert await recipients(one, "payout_ready") == ["11", "12"]
    assert await recipients(one, "payout_queue") == [OWNER, STAFF_ADMIN]
