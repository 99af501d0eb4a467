"""Engines for SQLite (the embedded default) and PostgreSQL, with the transaction discipline the
purchase flow relies on.

SQLite: WAL, ``busy_timeout``, foreign keys on, and every write transaction opened with ``BEGIN IMMEDIATE``
so that a writer takes the write lock before it reads what it is about to change. Inside one process,
writers additionally queue on an ``asyncio.Lock``: SQLite admits one writer at a time anyway, and waiting on
the lock is far cheaper than SQLite's sleeping busy handler (which other processes, like a CLI import
running beside the bot, still fall back on).

PostgreSQL: READ COMMITTED; services lock what they change with ``FOR UPDATE`` (``SKIP LOCKED`` where
they pick from stock).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core import sqlite_driver

_WRITE_OPTION = "keyshop_write"
log = logging.getLogger(__name__)


def normalize_url(url: str | URL) -> URL:
    """Accept the plain forms people paste (``postgresql://``, ``sqlite:///``) and pick our async drivers."""
    u = make_url(url) if isinstance(url, str) else url
    backend = u.get_backend_name()
    if backend == "sqlite" and u.drivername != "sqlite+aiosqlite":
        u = u.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and u.drivername != "postgresql+asyncpg":
        u = u.set(drivername="postgresql+asyncpg")
    elif backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return u


class Database:
    def __init__(self, url: str | URL, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        if self.is_sqlite:
            if self.url.database in (None, "", ":memory:"):
                raise ValueError("an in-memory SQLite database cannot be shared by connections; use a file")
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            module = sqlite_driver.dbapi()
            self.engine: AsyncEngine = create_async_engine(
                self.url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"timeout": 30},
                module=module,
                # Every unit of work ends its transaction itself, and the fast path's BEGIN first rolls
                # back what an interrupted one left open: the pool's own rollback would be a wasted trip
                # to the driver thread on every return. The stock adapter keeps it.
                pool_reset_on_return=None if sqlite_driver.is_fast(module) else "rollback",
            )
            _install_sqlite_discipline(self.engine)
            self.write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            # No pre-ping (a round trip on every checkout): a connection the server dropped fails its
            # statement, SQLAlchemy invalidates the pool, and the caller's retry gets a fresh one.
            self.engine = create_async_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
            )
            self.write_lock = None

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


def _install_sqlite_discipline(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver: we emit it ourselves, IMMEDIATE for writers.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-32768")  # 32 MiB: stock indexes of a million keys stay in memory
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION, False) else "BEGIN"
        # Straight to the driver: this runs once per transaction, on every purchase.
        driver = conn.connection.dbapi_connection
        begin_clean = getattr(driver, "begin_clean", None)
        if begin_clean is not None:
            if begin_clean(sql):
                log.warning("rolled back a transaction an interrupted unit of work left open")
            return
        cursor = driver.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()


WRITE_OPTION = _WRITE_OPTION
