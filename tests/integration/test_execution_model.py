"""The execution model (issue 8): every unit of work is one synchronous function run on a database thread.

On SQLite one writer thread runs every write transaction and reads run on their own threads, so neither
waits behind the other; the event loop never runs a statement; a caller cancelled before its turn never
runs its unit of work, and one that raises leaves no transaction behind."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text

from core.clock import FrozenClock
from core.context import Context
from core.db import Database
from core.models import STARS, Charge, OrderStatus, PaymentStatus
from core.services import Services
from core.uow import UnitOfWork
from core.vault import Vault
from tests.conftest import BACKENDS, buyer, pay, stocked

WAIT = 10.0  # seconds: how long a thread waits for the other side before the test counts it as blocked


class Boom(Exception):
    pass


def position(uow: UnitOfWork, name: str) -> int | None:
    return uow.repo.cursors.get(name)


def set_position(uow: UnitOfWork, name: str, value: int, clock: FrozenClock) -> None:
    uow.repo.cursors.advance(name, value, clock.now())
    uow.commit()


async def wait_in_thread(flag: threading.Event) -> bool:
    return await asyncio.to_thread(flag.wait, WAIT)


# ---------------------------------------------------------------- SQLite: readers and the writer


async def test_on_sqlite_a_long_read_does_not_block_a_write_committing_meanwhile(
    shop: Services, clock: FrozenClock
) -> None:
    ctx = shop.ctx
    await ctx.write(set_position, "x", 1, clock)
    reading, committed = threading.Event(), threading.Event()

    def long_read(uow: UnitOfWork) -> tuple[int | None, bool, int | None]:
        before = uow.repo.cursors.get("x")  # the read transaction now holds its snapshot
        reading.set()
        waited = committed.wait(WAIT)  # a slow read: it stays open until the write has committed
        return before, waited, uow.repo.cursors.get("x")

    read = asyncio.create_task(ctx.read(long_read))
    try:
        assert await wait_in_thread(reading)
        await asyncio.wait_for(ctx.write(set_position, "x", 2, clock), WAIT)
        assert not read.done()  # the write committed while the read was still open
    finally:
        committed.set()
    before, waited, after = await read
    assert waited
    assert before == after == 1  # the read kept its snapshot throughout
    assert await ctx.read(position, "x") == 2


async def test_on_sqlite_a_long_write_does_not_block_a_read_meanwhile(
    shop: Services, clock: FrozenClock
) -> None:
    ctx = shop.ctx
    await ctx.write(set_position, "x", 1, clock)
    writing, read_done = threading.Event(), threading.Event()

    def long_write(uow: UnitOfWork) -> bool:
        uow.repo.cursors.advance("x", 2, clock.now())  # BEGIN IMMEDIATE: it holds the write lock
        writing.set()
        waited = read_done.wait(WAIT)  # a slow write: it commits only once the read has finished
        uow.commit()
        return waited

    write = asyncio.create_task(ctx.write(long_write))
    try:
        assert await wait_in_thread(writing)
        seen = await asyncio.wait_for(ctx.read(position, "x"), WAIT)
        assert not write.done()  # the read finished while the write still held the lock
    finally:
        read_done.set()
    assert seen == 1  # what was committed, not the write in progress
    assert await write
    assert await ctx.read(position, "x") == 2


# ---------------------------------------------------------------- which thread runs what


async def test_on_sqlite_every_write_unit_of_work_runs_on_the_one_writer_thread(shop: Services) -> None:
    threads: list[str] = []

    def write(uow: UnitOfWork, i: int) -> None:
        threads.append(threading.current_thread().name)
        uow.repo.cursors.advance(f"c{i}", i, shop.ctx.clock.now())
        uow.commit()

    await asyncio.gather(*[shop.ctx.write(write, i) for i in range(40)])
    assert len(threads) == 40
    (name,) = set(threads)
    assert name.startswith("keyshop-db-writer")


async def test_on_sqlite_the_statements_of_a_purchase_that_change_data_all_run_on_the_writer_thread(
    shop: Services,
) -> None:
    changes: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            changes.append(threading.current_thread().name)

    event.listen(shop.ctx.db.engine, "before_cursor_execute", record)
    try:
        pid = await stocked(shop, 3)
        o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
        assert (await pay(shop, o)).outcome is PaymentStatus.ACCEPTED
    finally:
        event.remove(shop.ctx.db.engine, "before_cursor_execute", record)
    assert changes
    (name,) = set(changes)
    assert name.startswith("keyshop-db-writer")


async def test_the_event_loop_thread_never_runs_sql_over_a_checkout_and_payment(any_shop: Services) -> None:
    shop = any_shop
    loop_thread = threading.get_ident()
    statements: list[tuple[int, str]] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append((threading.get_ident(), statement))

    event.listen(shop.ctx.db.engine, "before_cursor_execute", record)
    try:
        pid = await stocked(shop, 3)
        uid = await buyer(shop)
        o = await shop.checkout.checkout(uid, pid, 2, STARS)
        assert (await pay(shop, o)).outcome is PaymentStatus.ACCEPTED
        assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED
        assert len((await shop.orders.reveal(o.ref, user_id=uid, actor="user", reason="test")).keys) == 2
    finally:
        event.remove(shop.ctx.db.engine, "before_cursor_execute", record)
    assert len(statements) > 10  # the listener saw the purchase
    on_loop = [s for ident, s in statements if ident == loop_thread]
    assert on_loop == []


# ---------------------------------------------------------------- cancellation and failure


@pytest.fixture
async def one_thread(any_db: Database, vault: Vault, clock: FrozenClock) -> AsyncIterator[Context]:
    """A context on the same database whose units of work all queue for one thread (SQLite's writer is
    always one; PostgreSQL's pool is made one), so a unit of work can be made to wait its turn."""
    db = Database(any_db.url, pool_size=1)
    try:
        yield Context(db=db, vault=vault, clock=clock)
    finally:
        await db.dispose()


async def test_a_caller_cancelled_while_its_unit_of_work_waits_its_turn_never_runs_it(
    one_thread: Context, clock: FrozenClock
) -> None:
    ctx = one_thread
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def occupy(uow: UnitOfWork) -> None:
        started.set()
        release.wait(WAIT)

    def cancelled(uow: UnitOfWork) -> None:
        ran.append("cancelled")
        set_position(uow, "cancelled", 1, clock)

    first = asyncio.create_task(ctx.write(occupy))
    try:
        assert await wait_in_thread(started)
        waiting = asyncio.create_task(ctx.write(cancelled))
        await asyncio.sleep(0.1)  # queued behind the first
        assert not waiting.done()
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert waiting.cancelled()
    finally:
        release.set()
    await first
    await ctx.write(set_position, "after", 1, clock)  # the queue moved on past where it stood
    assert ran == []
    assert await ctx.read(position, "cancelled") is None  # nothing written
    assert await ctx.read(position, "after") == 1


async def test_a_caller_cancelled_while_its_unit_of_work_runs_leaves_it_to_finish_as_a_whole(
    one_thread: Context, clock: FrozenClock
) -> None:
    ctx = one_thread
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow(uow: UnitOfWork) -> None:
        uow.repo.cursors.advance("a", 1, clock.now())
        started.set()
        release.wait(WAIT)
        uow.repo.cursors.advance("b", 1, clock.now())
        uow.commit()
        finished.append("slow")

    running = asyncio.create_task(ctx.write(slow))
    try:
        assert await wait_in_thread(started)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        release.set()
    await ctx.write(set_position, "next", 1, clock)  # queued behind it: runs once it has finished
    assert finished == ["slow"]
    assert [await ctx.read(position, n) for n in ("a", "b", "next")] == [1, 1, 1]


async def _no_transaction_left_open(ctx: Context) -> None:
    """Nothing holds a transaction on the database: another connection can take the write lock at once
    (SQLite), or no session of ours is idle in a transaction (PostgreSQL)."""
    db = ctx.db
    if db.is_sqlite:
        other = sqlite3.connect(str(db.url.database), timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if a transaction still held it
            other.execute("ROLLBACK")
        finally:
            other.close()
    else:

        def idle_in_transaction(uow: UnitOfWork) -> int:
            q = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
            return int(uow.conn.execute(q).scalar_one())

        assert await ctx.read(idle_in_transaction) == 0


async def test_a_write_unit_of_work_that_raises_keeps_nothing_and_leaves_no_transaction_open(
    one_thread: Context, clock: FrozenClock
) -> None:
    ctx = one_thread

    def fails(uow: UnitOfWork, n: int) -> None:
        uow.repo.cursors.advance(f"failed{n}", 1, clock.now())
        raise Boom()

    for n in range(3):  # more than once: the thread and its connection are reused
        with pytest.raises(Boom):
            await ctx.write(fails, n)
        await _no_transaction_left_open(ctx)
        await ctx.write(set_position, f"next{n}", 1, clock)  # the next one on the same thread works
    assert [await ctx.read(position, f"failed{n}") for n in range(3)] == [None] * 3
    assert [await ctx.read(position, f"next{n}") for n in range(3)] == [1] * 3


async def test_a_read_unit_of_work_that_raises_leaves_no_transaction_open(
    one_thread: Context, clock: FrozenClock
) -> None:
    ctx = one_thread
    await ctx.write(set_position, "x", 1, clock)

    def fails(uow: UnitOfWork) -> None:
        uow.repo.cursors.get("x")
        raise Boom()

    for _ in range(3):  # more than once: on SQLite a reader thread's connection is reused
        with pytest.raises(Boom):
            await ctx.read(fails)
    await _no_transaction_left_open(ctx)
    await ctx.write(set_position, "x", 2, clock)
    assert await ctx.read(position, "x") == 2


async def test_every_read_only_service_runs_on_a_read_only_connection_without_locking(
    any_shop: Services,
) -> None:
    """Reads run on connections that refuse writes and row locks (SQLite query_only, a PostgreSQL
    read-only session): the pre-checkout answer, the catalog, the order history and a user lookup."""
    pid = await stocked(any_shop, 2)
    uid = await buyer(any_shop)
    order = await any_shop.checkout.checkout(uid, pid, 1, STARS)
    assert (await any_shop.payments.check_payable(order.ref, order.amount, STARS, payer=uid)).id == order.id
    assert [p.id for p, _ in await any_shop.catalog.shelf()] == [pid]
    assert [line.order.ref for line in await any_shop.orders.history(uid)] == [order.ref]
    assert (await any_shop.users.find("telegram", "1001")) is not None
    assert await any_shop.stock.available(pid) == 1


# ---------------------------------------------------------------- PostgreSQL: a server that drops us


def _busy(uow: UnitOfWork) -> None:
    uow.conn.execute(text("SELECT pg_sleep(0.05)"))


def _drop_every_other_session(uow: UnitOfWork) -> int:
    q = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return int(uow.conn.execute(q).scalar_one())


@pytest.mark.parametrize("any_db", [BACKENDS[1]], indirect=True)
async def test_on_postgresql_a_payment_notice_is_recorded_right_after_the_server_dropped_every_connection(
    any_shop: Services,
) -> None:
    """A restarted server (or a failover) leaves every thread's connection dead: the first one to find
    out must not leave the others to fail the notice's retries one after another."""
    shop = any_shop
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    # every thread, readers and writers, has its connection
    await asyncio.gather(
        *(shop.ctx.read(_busy) for _ in range(20)), *(shop.ctx.write(_busy) for _ in range(20))
    )
    killer = Context(db=Database(shop.ctx.db.url, pool_size=1), vault=shop.ctx.vault)
    try:
        assert await killer.write(_drop_every_other_session) >= 2
    finally:
        await killer.db.dispose()
    charge = Charge("telegram", "c1", o.ref, o.amount, STARS, payer_id=uid)
    assert await shop.payments.record_notice(charge, raw={}) > 0
