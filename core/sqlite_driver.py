"""A leaner aiosqlite adapter for SQLAlchemy: one trip to the connection's thread per statement.

SQLAlchemy's stock adapter makes three or four trips per statement (open a cursor, execute, fetch, close
it), each a hand-off to aiosqlite's worker thread and back through the event loop. On the purchase path
that overhead, not SQLite, was most of the time. This adapter runs the whole statement in one function on
the worker thread (aiosqlite's own ``execute_fetchall`` works the same way). Everything else, the dialect
included, is SQLAlchemy's. Should aiosqlite's or SQLAlchemy's internals change, ``dbapi()`` falls back
to the stock adapter, so it can only ever be slower, never wrong; it then logs a WARNING saying why the
fast path is off, and tests/integration/test_sqlite_fast_path.py fails.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

log = logging.getLogger(__name__)

# What the one-trip cursor touches beyond the DBAPI: aiosqlite's worker-thread hand-off and raw
# connection, and SQLAlchemy's adapter internals it reuses.
REQUIRED: tuple[tuple[type, tuple[str, ...]], ...] = (
    (aiosqlite.Connection, ("_execute", "_conn")),
    (AsyncAdapt_aiosqlite_cursor, ("_adapt_connection", "_connection", "await_", "_rows")),
    (AsyncAdapt_aiosqlite_connection, ("_handle_exception", "cursor")),
)


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def _run(self, fn: Any) -> Any:
        try:
            return self.await_(self._connection._execute(fn))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        raw: sqlite3.Connection = self._connection._conn  # only touched on the worker thread, in run()

        def run() -> tuple[Any, Any, int | None, int]:
            cur = raw.cursor()
            try:
                cur.execute(operation, () if parameters is None else parameters)
                desc = cur.description
                return desc, (cur.fetchall() if desc else None), cur.lastrowid, cur.rowcount
            finally:
                cur.close()

        desc, rows, lastrowid, rowcount = self._run(run)
        if desc:
            self.description = desc
            self.lastrowid = self.rowcount = -1
            self._rows = deque(rows)
        else:
            self.description = None
            self.lastrowid = lastrowid
            self.rowcount = rowcount

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        raw: sqlite3.Connection = self._connection._conn

        def run() -> tuple[int | None, int]:
            cur = raw.cursor()
            try:
                cur.executemany(operation, seq_of_parameters)
                return cur.lastrowid, cur.rowcount
            finally:
                cur.close()

        self.description = None
        self.lastrowid, self.rowcount = self._run(run)


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        return super().cursor(server_side) if server_side else _OneTripCursor(self)

    def begin_clean(self, sql: str) -> bool:
        """``sql`` (a BEGIN), in one trip, after rolling back whatever transaction an interrupted unit of
        work left open on this connection. Returns whether there was one.

        Units of work end their transactions themselves, so the pool does not reset connections. One
        cancelled while its BEGIN waited in the driver thread (the bot stopping, say) cannot: the BEGIN
        still runs after the connection went back to the pool."""
        raw: sqlite3.Connection = self._connection._conn

        def run() -> bool:
            stale = raw.in_transaction
            if stale:
                raw.execute("ROLLBACK")
            raw.execute(sql)
            return stale

        try:
            return bool(self.await_(self._connection._execute(run)))
        except Exception as error:
            self._handle_exception(error)
            raise


def is_fast(module: object) -> bool:
    """Is ``module`` (what ``dbapi()`` returned) the fast path, whose connections begin clean?"""
    return isinstance(module, _DBAPI)


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    _warned = False

    def connect(self, *arg: Any, **kw: Any) -> Any:
        conn = super().connect(*arg, **kw)
        if type(conn) is AsyncAdapt_aiosqlite_connection:
            conn.__class__ = _Connection  # same slots: a cheaper cursor, nothing else
        elif not self._warned:
            self._warned = True
            _fast_path_off(f"SQLAlchemy's aiosqlite adapter made a {type(conn).__qualname__}")
        return conn


def _fast_path_off(reason: str) -> None:
    log.warning(
        "SQLite fast path is off: %s (aiosqlite %s); using SQLAlchemy's stock aiosqlite adapter, which is "
        "correct but makes three or four trips to the driver thread per statement instead of one",
        reason,
        getattr(aiosqlite, "__version__", "?"),
    )


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module to pass to ``create_async_engine(module=...)`` for ``sqlite+aiosqlite`` URLs."""
    missing = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls, names in REQUIRED
        for name in names
        if not hasattr(cls, name)
    ]
    if missing:
        _fast_path_off(f"missing {', '.join(missing)}")
        return AsyncAdapt_aiosqlite_dbapi(aiosqlite, sqlite3)
    return _DBAPI(aiosqlite, sqlite3)
