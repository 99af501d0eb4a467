"""Shared set-up for the benchmarks: a fresh, migrated database of either kind."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import Connection, text

from core import migrate
from core.db import Database


def default_sqlite_url() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='keyshop-bench-')) / 'bench.db'}"


async def fresh_database(url: str | None, *, pool_size: int = 10) -> Database:
    """A migrated, empty database. For PostgreSQL the public schema is dropped first: point the
    benchmarks at a scratch database only."""
    db = Database(url or default_sqlite_url(), pool_size=pool_size)
    if not db.is_sqlite:
        await db.run_committed(_drop_schema)
    await migrate.upgrade(db)
    return db


def _drop_schema(conn: Connection) -> None:
    conn.execute(text("DROP SCHEMA public CASCADE"))
    conn.execute(text("CREATE SCHEMA public"))


def driver_dsn(db: Database) -> str:
    """The URL as the bare driver takes it (a file path for sqlite3, a DSN for psycopg)."""
    if db.is_sqlite:
        assert db.url.database
        return db.url.database
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)
