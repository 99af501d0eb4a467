"""The SQLite fast path (core/sqlite_driver.py) is on in the engine the shop builds: one trip to the
driver thread per statement. When it cannot be on, the shop still works and a WARNING says why."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text

from bot.runtime import close_shop, open_shop
from bot.settings import load_settings
from core import sqlite_driver
from core.db import Database


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Hand-offs to aiosqlite's worker thread so far: every statement costs at least one."""
    count = 0
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return lambda: count


async def _trips_per_statement(db: Database, trips: Callable[[], int]) -> list[int]:
    """Trips taken by a query with rows, a write, and an executemany, each checked for its result."""
    used = []
    async with db.engine.connect() as conn:
        await conn.execute(text("CREATE TEMP TABLE fast_path (n INTEGER)"))
        before = trips()
        assert (await conn.execute(text("SELECT :a + 1"), {"a": 41})).scalar_one() == 42
        used.append(trips() - before)
        before = trips()
        assert (await conn.execute(text("INSERT INTO fast_path VALUES (1)"))).rowcount == 1
        used.append(trips() - before)
        before = trips()
        await conn.execute(text("INSERT INTO fast_path VALUES (:n)"), [{"n": 2}, {"n": 3}])
        used.append(trips() - before)
        assert (await conn.execute(text("SELECT sum(n) FROM fast_path"))).scalar_one() == 6
    return used


async def test_the_shop_runs_each_sqlite_statement_in_one_trip_to_the_driver_thread(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, trips: Callable[[], int]
) -> None:
    with caplog.at_level(logging.WARNING, logger=sqlite_driver.__name__):
        services = await open_shop(load_settings(_env_file=None, database_url=None, data_dir=tmp_path))
        try:
            db = services.ctx.db
            assert db.is_sqlite
            assert await _trips_per_statement(db, trips) == [1, 1, 1]
        finally:
            await close_shop(services)
    assert "fast path is off" not in caplog.text


@pytest.mark.parametrize("broken", ["a changed aiosqlite", "a changed SQLAlchemy adapter"])
async def test_without_the_fast_path_sqlite_still_works_and_a_warning_says_why(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    trips: Callable[[], int],
    broken: str,
) -> None:
    if broken == "a changed aiosqlite":
        monkeypatch.setattr(sqlite_driver, "REQUIRED", ((aiosqlite.Connection, ("_gone",)),))
        why = "missing aiosqlite.core.Connection._gone"
    else:  # the adapter's connections are no longer the class the fast path converts
        monkeypatch.setattr(sqlite_driver, "AsyncAdapt_aiosqlite_connection", type("Other", (), {}))
        why = "SQLAlchemy's aiosqlite adapter made a AsyncAdapt_aiosqlite_connection"
    with caplog.at_level(logging.WARNING, logger=sqlite_driver.__name__):
        db = Database(f"sqlite:///{tmp_path / 'shop.db'}")
        try:
            used = await _trips_per_statement(db, trips)
        finally:
            await db.dispose()
    assert all(n > 1 for n in used), used  # the stock adapter: correct, only slower
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "SQLite fast path is off" in warnings[0].getMessage()
    assert why in warnings[0].getMessage()
