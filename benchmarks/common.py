"""Shared set-up for the benchmarks: a fresh, migrated database of either kind."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import text

from core import migrate
from core.db import Database


def default_sqlite_url() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='keyshop-bench-')) / 'bench.db'}"


async def fresh_database(url: str | None, *, pool_size: int = 10) -> Database:
    """A migrated, empty database. For PostgreSQL the public schema is dropped first: point the
    benchmarks at a scratch database only."""
    db = Database(url or default_sqlite_url(), pool_size=pool_size)
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    await migrate.upgrade(db)
    return db


def driver_dsn(db: Database) -> str:
    """The URL as the bare driver takes it (a file path for aiosqlite, a DSN for asyncpg)."""
    if db.is_sqlite:
        assert db.url.database
        return db.url.database
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)
