"""A unit of work cancelled half-way (the bot stopping, a task cancelled) leaves no transaction open on a
pooled connection: the next unit of work on that connection works."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

from core import sqlite_driver
from core.db import Database
from core.tables import metadata
from core.uow import UnitOfWork


@pytest.mark.parametrize("adapter", ["fast path", "stock adapter"])
async def test_a_unit_of_work_cancelled_while_beginning_leaves_no_transaction_open_on_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapter: str
) -> None:
    if adapter == "stock adapter":  # what the shop runs on should aiosqlite's internals change
        monkeypatch.setattr(sqlite_driver, "dbapi", lambda: AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3))
    path = tmp_path / "shop.db"
    db = Database(f"sqlite:///{path}", pool_size=1)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with UnitOfWork(db) as uow:  # the pool now holds one connection
            await uow.commit()

        # Another process holds the write lock: our BEGIN IMMEDIATE waits in the driver thread.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with UnitOfWork(db) as uow:
                await uow.commit()

        task = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.sleep(0.1)
        other.execute("ROLLBACK")  # the interrupted BEGIN now goes through in the driver thread
        other.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)

        for write_mode in (True, False, True):
            async with UnitOfWork(db, write=write_mode) as uow:
                await uow.repo.cursors.get("anything")
                await uow.commit()
    finally:
        await db.dispose()
