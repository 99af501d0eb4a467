"""Where units of work run: synchronous functions, each in one trip to a database thread.

A unit of work is one plain function ``job(conn, *args)`` on a synchronous SQLAlchemy ``Connection``; the
event loop hands it to a database thread and awaits its result (``await db.run(job, ...)``). Nothing of a
transaction runs on the event loop: no statement, no lock, no per-statement hand-off. Services are written
once, as these functions, for both databases.

SQLite (the embedded default): **one writer thread** with one connection runs every write transaction,
back to back, each opened with ``BEGIN IMMEDIATE`` (so a writer takes the write lock before it reads what it
is about to change; another process, like a CLI import, still queues on SQLite's ``busy_timeout``). Reads
run on their own threads and connections (``query_only``), in WAL mode, and never wait behind the writer.
WAL, ``busy_timeout``, foreign keys on.

PostgreSQL: a pool of writer threads and one of reader threads (read-only sessions), each thread with its
own connection (psycopg 3, a synchronous driver: a unit of work is one function with no hand-off between
its statements); READ COMMITTED, and services lock what they change with ``FOR UPDATE`` (``SKIP LOCKED``
where they pick from stock).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from core.lanes import Lane

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# SQLite: how many threads (each with its own connection) serve read-only units of work.
SQLITE_READERS = 4

# How long the interpreter lets one thread keep the GIL while another waits for it (CPython's default is
# 5 ms). A database thread gives the GIL up around every statement; with the default it then waits up to
# 5 ms for the event loop to hand it back, holding SQLite's write lock all the while. 0.2 ms measured
# about 15 % more orders per second on the 2-core development machine, at no measurable cost elsewhere.
GIL_SWITCH_INTERVAL = 0.0002


def normalize_url(url: str | URL) -> URL:
    """Accept the plain forms people paste (``postgresql://``, ``sqlite:///``, the async drivers' URLs of
    earlier versions) and pick our synchronous drivers."""
    u = make_url(url) if isinstance(url, str) else url
    backend = u.get_backend_name()
    if backend == "sqlite":
        if u.drivername != "sqlite+pysqlite":
            u = u.set(drivername="sqlite+pysqlite")
    elif backend in ("postgresql", "postgres"):
        if u.drivername != "postgresql+psycopg":
            u = u.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return u


class Database:
    """The engine and the threads units of work run on. ``pool_size``: PostgreSQL writer threads (each
    with a connection), and as many readers; on SQLite the writer is always one, readers
    ``SQLITE_READERS``."""

    def __init__(self, url: str | URL, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._guard = threading.Lock()
        self._closed = False
        # Moved when a connection turns out dropped by the server: one dropped usually means all were (a
        # restart, a failover), so every thread opens a new one before its next unit of work instead of
        # each failing once (retries of one caller would meet one dead connection after another).
        self._epoch = 0
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        if self.is_sqlite:
            if self.url.database in (None, "", ":memory:"):
                raise ValueError("an in-memory SQLite database cannot be shared by connections; use a file")
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            # Each thread keeps its connection for good: no pool in between. check_same_thread is off only
            # so that dispose() can close them; a connection is only ever used by the thread that opened it.
            self.engine: Engine = create_engine(
                self.url,
                echo=echo,
                poolclass=NullPool,
                connect_args={"timeout": 30, "check_same_thread": False},
            )
            _install_sqlite_discipline(self.engine)
            self._writer = Lane("keyshop-db-writer", 1)
            self._reader = Lane("keyshop-db-reader", SQLITE_READERS)
        else:
            # No pre-ping (a round trip on every unit of work): a connection the server dropped fails its
            # statement, the thread drops it, and the caller's retry gets a fresh one.
            self.engine = create_engine(
                self.url, echo=echo, poolclass=NullPool, connect_args={"connect_timeout": 10}
            )
            # Reads get threads (and connections) of their own, so that a burst of writes queueing on row
            # locks never delays a pre-checkout answer or the lookup of the user behind an update.
            self._writer = Lane("keyshop-db-writer", pool_size)
            self._reader = Lane("keyshop-db-reader", pool_size)

    async def run(self, job: Callable[..., _T], /, *args: Any) -> _T:
        """``job(conn, *args)`` in one write transaction on a database thread; rolled back unless the job
        committed (``conn.commit()``)."""
        return await self._submit(self._writer, True, job, args)

    async def read(self, job: Callable[..., _T], /, *args: Any) -> _T:
        """``job(conn, *args)`` in a read-only transaction (SQLite: on a reader, never behind the writer)."""
        return await self._submit(self._reader, False, job, args)

    async def run_committed(self, job: Callable[..., Any], /, *args: Any) -> Any:
        """``job(conn, *args)`` in a write transaction committed when it returns (schema set-up, seeds)."""
        return await self._submit(self._writer, True, _committing, (job, *args))

    async def _submit(self, lane: Lane, write: bool, job: Callable[..., Any], args: Any) -> Any:
        if self._closed:
            raise RuntimeError("the database was disposed")
        # A caller cancelled before its turn never runs; one cancelled while running finishes (its
        # transaction commits or rolls back as a whole) without anyone waiting for it.
        return await lane.submit(self._execute, write, job, args)

    # ------------------------------------------------------------------ on the database threads

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated or self._local.epoch != self._epoch:
            if conn is not None:
                self._forget(conn)
            self._local.epoch = self._epoch
            conn = self.engine.connect()
            if threading.current_thread().name.startswith("keyshop-db-reader"):
                conn.exec_driver_sql(
                    "PRAGMA query_only=ON"
                    if self.is_sqlite
                    else "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
                )
                conn.commit()
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    def _forget(self, conn: Connection) -> None:
        with self._guard:
            if conn in self._connections:
                self._connections.remove(conn)
        try:
            conn.close()
        except Exception:  # a connection already broken: nothing more to release
            log.debug("closing a broken connection failed", exc_info=True)

    def _execute(self, write: bool, job: Callable[..., Any], args: Any) -> Any:
        conn = self._connection()
        try:
            if self.is_sqlite:
                # Straight to the driver (SQLAlchemy's own BEGIN is a no-op here): IMMEDIATE for writers.
                _begin_sqlite(conn, "BEGIN IMMEDIATE" if write else "BEGIN")
            conn.begin()
            return job(conn, *args)
        except BaseException:
            if conn.invalidated:  # dropped by the server: the connections opened before it go too
                self._epoch += 1
            if conn.in_transaction():
                self._rollback(conn)
            raise
        finally:
            if conn.in_transaction():
                self._rollback(conn)

    def _rollback(self, conn: Connection) -> None:
        try:
            conn.rollback()
        except Exception:
            log.warning("rollback failed; dropping the connection", exc_info=True)
            self._local.conn = None
            self._forget(conn)

    # ------------------------------------------------------------------ shutdown

    async def dispose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._writer.stop()
        self._reader.stop()
        with self._guard:
            conns, self._connections = self._connections, []
        for conn in conns:
            try:
                conn.close()
            except Exception:
                log.debug("closing a connection at shutdown failed", exc_info=True)
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"


def _begin_sqlite(conn: Connection, begin: str) -> None:
    """``begin`` on the driver; its error as SQLAlchemy raises any statement's (a write lock another process
    held past the busy timeout is an ``OperationalError``, which callers retry as transient)."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        conn.connection.dbapi_connection.execute(begin)  # type: ignore[union-attr]
    except dbapi.Error as e:
        raise exc.DBAPIError.instance(begin, (), e, dbapi.Error) from e


def _committing(conn: Connection, job: Callable[..., Any], *args: Any) -> Any:
    out = job(conn, *args)
    conn.commit()
    return out


def _install_sqlite_discipline(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver: the thread emits it, IMMEDIATE for writers.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-32768")  # 32 MiB: stock indexes of a million keys stay in memory
        cur.close()
