"""Prebuilt statements (core/sql.py) behave as SQLAlchemy's own execution does, on both databases: the
same values go in and come out, and the driver's errors come out as SQLAlchemy's."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Dialect,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from core.db import Database
from core.sql import Prebuilt, _cursor, run
from core.tables import UTCDateTime


class SlowlyTagged(TypeDecorator[str]):
    """Text read back tagged; building its result processor takes a while (a type whose set-up yields
    the GIL), which opens wide the moment a statement's first run is setting up its rows."""

    impl = String(32)
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        time.sleep(0.05)
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else f"<{value}>"


metadata = MetaData()
probe = Table(
    "probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime),
    Column("flag", Boolean),
    Column("doc", JSON),
    Column("blob", LargeBinary),
    Column("name", String(32)),
    Column("n", BigInteger),
    Column("tagged", SlowlyTagged),
)
_INSERT = Prebuilt(insert(probe))


def _create(conn: Connection) -> None:
    metadata.create_all(conn)
    conn.commit()


def _row(conn: Connection, q: Prebuilt, rid: int) -> tuple[Any, ...]:
    return tuple(run(conn, q, {"b_id": rid}).one())


async def test_a_statement_run_for_the_first_time_by_many_threads_at_once_processes_every_row(
    any_db: Database,
) -> None:
    await any_db.run(_create)
    await any_db.run_committed(lambda conn: conn.execute(insert(probe).values(id=1, tagged="x")))
    q = Prebuilt(select(probe.c.tagged).where(probe.c.id == bindparam("b_id")))
    seen = await asyncio.gather(*(any_db.read(_row, q, 1) for _ in range(4)))
    assert seen == [("<x>",)] * 4


VALUES: list[dict[str, Any]] = [
    {
        "id": 1,
        "at": datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "flag": True,
        "doc": {"name": "中文 é \u2028 😀", "list": [1, None, True]},
        "blob": b"\x00\xff",
        "name": "héllo",
        "n": 2**62,
        "tagged": "t",
    },
    {
        "id": 2,
        "at": datetime(2024, 1, 2, 11, 4, 5, tzinfo=timezone(timedelta(hours=8))),
        "flag": False,
        "doc": [],
        "blob": b"",
        "name": "",
        "n": -1,
        "tagged": "",
    },
    {"id": 3, "at": None, "flag": None, "doc": {}, "blob": None, "name": None, "n": None, "tagged": None},
]


async def test_values_written_and_read_by_a_prebuilt_statement_are_those_sqlalchemy_writes_and_reads(
    any_db: Database,
) -> None:
    await any_db.run(_create)
    q = Prebuilt(select(probe).where(probe.c.id == bindparam("b_id")))
    for v in VALUES:
        await any_db.run_committed(lambda conn, v=v: run(conn, _INSERT, v))
        await any_db.run_committed(
            lambda conn, v=v: conn.execute(insert(probe).values({**v, "id": v["id"] + 100}))
        )
    for v in VALUES:
        ours = await any_db.read(_row, q, v["id"])
        theirs = await any_db.read(
            lambda conn, v=v: tuple(conn.execute(select(probe).where(probe.c.id == v["id"] + 100)).one())
        )
        assert ours[1:] == theirs[1:]
        assert ours[1] is None or (ours[1] == v["at"] and ours[1].tzinfo is UTC)


async def test_a_prebuilt_statement_breaking_a_constraint_raises_sqlalchemys_integrity_error(
    any_db: Database,
) -> None:
    await any_db.run(_create)
    await any_db.run_committed(lambda conn: run(conn, _INSERT, {"id": 1}))
    with pytest.raises(IntegrityError):
        await any_db.run_committed(lambda conn: run(conn, _INSERT, {"id": 1}))
    await any_db.run_committed(lambda conn: run(conn, _INSERT, {"id": 2}))  # the thread carries on


async def test_prebuilt_statements_on_one_connection_run_on_one_driver_cursor_until_it_is_replaced(
    any_db: Database,
) -> None:
    await any_db.run(_create)
    q = Prebuilt(select(probe.c.id).where(probe.c.id == bindparam("b_id")))

    def cursors(conn: Connection, rid: int, drop: bool) -> tuple[Any, Any, Any]:
        run(conn, _INSERT, {"id": rid})
        first = _cursor(conn)
        assert run(conn, q, {"b_id": rid}).scalar_one() == rid
        dbapi_conn = conn.connection.dbapi_connection
        if drop:  # as when the server drops the connection: the thread opens another for its next job
            conn.invalidate()
        return first, _cursor(conn) if not drop else first, dbapi_conn

    one = Database(any_db.url, pool_size=1)  # one writer thread on both databases
    try:
        first, second, dbapi_conn = await one.run(cursors, 1, False)
        assert first is second and first.connection is dbapi_conn
        await one.run(cursors, 2, True)
        after, _, dbapi_after = await one.run(cursors, 3, False)
        assert dbapi_after is not dbapi_conn
        assert after is not first and after.connection is dbapi_after
    finally:
        await one.dispose()
