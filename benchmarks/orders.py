"""Paid-and-delivered orders per second through the core services, beside the same workload written as
hand-made SQL transactions on the same driver, measured in the same run.

    python benchmarks/orders.py                       # SQLite (a temporary file)
    python benchmarks/orders.py --database-url postgresql://postgres@127.0.0.1/test   # drops its schema!

Each order: checkout of one key (limits checked, stock reserved, audit row) in one write transaction, then
a payment confirmation (payment row, keys sold, order delivered, audit rows, outbox row) in another.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import driver_dsn, fresh_database
from core import tables as t
from core.context import STARS, Context
from core.db import Database
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec

PRICE = 50


async def seed(db: Database, n_orders: int) -> tuple[int, list[int]]:
    """A product with one key per order, and one buyer per order."""
    shop = Services(Context(db, Vault.from_spec(new_key_spec())))
    pid = await shop.catalog.add_product(ProductDraft(name="bench", price_stars=PRICE, max_qty=3))
    keys = "".join(f"BENCH-{i:08d}-{secrets.token_hex(4)}\n" for i in range(n_orders)).encode()
    await shop.stock.import_keys(pid, io.BytesIO(keys))
    now = datetime.now(UTC)
    async with db.engine.begin() as conn:
        await conn.execute(
            t.users.insert(),
            [{"channel": "bench", "external_id": str(i), "created_at": now} for i in range(n_orders)],
        )
        users = list((await conn.execute(t.users.select().with_only_columns(t.users.c.id))).scalars())
    return pid, users


async def drive(
    users: list[int], concurrency: int, one: Callable[[int], Awaitable[bool]]
) -> tuple[float, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for u in users:
        queue.put_nowait(u)
    done = 0

    async def worker() -> None:
        nonlocal done
        while not queue.empty():
            if await one(queue.get_nowait()):
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return time.perf_counter() - start, done


# ---------------------------------------------------------------- ours


async def run_core(url: str | None, n: int, concurrency: int) -> tuple[float, int]:
    db = await fresh_database(url)
    try:
        pid, users = await seed(db, n)
        shop = Services(Context(db, Vault.from_spec(new_key_spec())))

        async def one(uid: int) -> bool:
            order = await shop.checkout.checkout(uid, pid, 1, STARS)
            res = await shop.payments.confirm_payment("telegram", f"c{uid}", order.ref, order.amount, STARS)
            return res.order is not None and res.order.status == "delivered"

        return await drive(users, concurrency, one)
    finally:
        await db.dispose()


# ---------------------------------------------------------------- baseline: hand-written SQL


def _stamp(dt: datetime) -> str:
    return dt.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


async def run_raw_sqlite(db: Database, pid: int, users: list[int], concurrency: int) -> tuple[float, int]:
    import aiosqlite

    path = driver_dsn(db)
    conns: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
    for _ in range(10):
        c = await aiosqlite.connect(path, isolation_level=None)
        await c.execute("PRAGMA busy_timeout=30000")
        await c.execute("PRAGMA synchronous=NORMAL")
        await c.execute("PRAGMA foreign_keys=ON")
        conns.put_nowait(c)
    write_lock = asyncio.Lock()

    async def tx(fn: Callable[[aiosqlite.Connection], Awaitable[Any]]) -> Any:
        async with write_lock:
            c = await conns.get()
            try:
                await c.execute("BEGIN IMMEDIATE")
                try:
                    out = await fn(c)
                except BaseException:
                    await c.execute("ROLLBACK")
                    raise
                await c.execute("COMMIT")
                return out
            finally:
                conns.put_nowait(c)

    async def one(uid: int) -> bool:
        now = datetime.now(UTC)
        ref = secrets.token_hex(8).upper()

        async def checkout(c: aiosqlite.Connection) -> bool:
            u = await (
                await c.execute("SELECT blocklisted, phone FROM users WHERE id = ?", (uid,))
            ).fetchone()
            p = await (
                await c.execute(
                    "SELECT price_stars, active, min_qty, max_qty FROM products WHERE id = ?", (pid,)
                )
            ).fetchone()
            assert u is not None and p is not None and not u[0] and p[1]
            oid = (
                await (
                    await c.execute(
                        "INSERT INTO orders (ref, user_id, product_id, quantity, currency, amount, status, "
                        "created_at, expires_at) VALUES (?, ?, ?, 1, 'XTR', ?, 'pending', ?, ?) RETURNING id",
                        (ref, uid, pid, p[0], _stamp(now), _stamp(now + timedelta(minutes=15))),
                    )
                ).fetchone()
            )[0]
            got = await (
                await c.execute(
                    "UPDATE keys SET status = 'reserved', order_id = ? WHERE id IN (SELECT id FROM keys "
                    "WHERE product_id = ? AND status = 'available' ORDER BY id LIMIT 1) AND status = 'available' "
                    "RETURNING id",
                    (oid, pid),
                )
            ).fetchall()
            if len(got) != 1:
                raise LookupError("out of stock")
            await c.execute(
                "INSERT INTO audit_log (at, actor, action, product_id, order_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    _stamp(now),
                    f"user:{uid}",
                    "order_created",
                    pid,
                    oid,
                    json.dumps({"reserved": [got[0][0]]}),
                ),
            )
            return True

        async def pay(c: aiosqlite.Connection) -> bool:
            o = await (
                await c.execute(
                    "SELECT id, amount, currency, status, user_id FROM orders WHERE ref = ?", (ref,)
                )
            ).fetchone()
            assert o is not None
            seen = await (
                await c.execute(
                    "SELECT 1 FROM payments WHERE provider = 'telegram' AND charge_id = ?", (f"c{uid}",)
                )
            ).fetchone()
            if seen:
                return False
            await c.execute(
                "INSERT INTO payments (provider, charge_id, order_id, order_ref, amount, currency, status, created_at) "
                "VALUES ('telegram', ?, ?, ?, ?, 'XTR', 'accepted', ?)",
                (f"c{uid}", o[0], ref, o[1], _stamp(now)),
            )
            sold = await (
                await c.execute(
                    "UPDATE keys SET status = 'sold', sold_at = ? WHERE order_id = ? AND status = 'reserved' "
                    "RETURNING id",
                    (_stamp(now), o[0]),
                )
            ).fetchall()
            if len(sold) != 1:
                raise RuntimeError("short delivery")
            cur = await c.execute(
                "UPDATE orders SET status = 'delivered', paid_at = ?, delivered_at = ? WHERE id = ? AND status = 'pending'",
                (_stamp(now), _stamp(now), o[0]),
            )
            if cur.rowcount != 1:
                raise RuntimeError("order changed")
            for action in ("payment_confirmed", "keys_delivered"):
                await c.execute(
                    "INSERT INTO audit_log (at, actor, action, product_id, order_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (_stamp(now), "payment:telegram", action, pid, o[0], json.dumps({"keys": [sold[0][0]]})),
                )
            await c.execute(
                "INSERT INTO outbox (user_id, kind, payload, status, attempts, next_attempt_at, created_at) "
                "VALUES (?, 'order_delivered', ?, 'pending', 0, ?, ?)",
                (o[4], json.dumps({"order_ref": ref}), _stamp(now), _stamp(now)),
            )
            return True

        await tx(checkout)
        return bool(await tx(pay))

    try:
        return await drive(users, concurrency, one)
    finally:
        while not conns.empty():
            await conns.get_nowait().close()


async def run_raw_postgres(db: Database, pid: int, users: list[int], concurrency: int) -> tuple[float, int]:
    import asyncpg

    pool = await asyncpg.create_pool(driver_dsn(db), min_size=10, max_size=20)
    assert pool is not None

    async def one(uid: int) -> bool:
        now = datetime.now(UTC)
        ref = secrets.token_hex(8).upper()
        async with pool.acquire() as c, c.transaction():
            u = await c.fetchrow("SELECT blocklisted, phone FROM users WHERE id = $1 FOR UPDATE", uid)
            p = await c.fetchrow(
                "SELECT price_stars, active, min_qty, max_qty FROM products WHERE id = $1", pid
            )
            assert u is not None and p is not None and not u[0] and p[1]
            oid = await c.fetchval(
                "INSERT INTO orders (ref, user_id, product_id, quantity, currency, amount, status, created_at, "
                "expires_at) VALUES ($1, $2, $3, 1, 'XTR', $4, 'pending', $5, $6) RETURNING id",
                ref,
                uid,
                pid,
                p[0],
                now,
                now + timedelta(minutes=15),
            )
            got = await c.fetch(
                "UPDATE keys SET status = 'reserved', order_id = $1 WHERE id IN (SELECT id FROM keys "
                "WHERE product_id = $2 AND status = 'available' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "AND status = 'available' RETURNING id",
                oid,
                pid,
            )
            if len(got) != 1:
                raise LookupError("out of stock")
            await c.execute(
                "INSERT INTO audit_log (at, actor, action, product_id, order_id, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                now,
                f"user:{uid}",
                "order_created",
                pid,
                oid,
                json.dumps({"reserved": [got[0][0]]}),
            )
        async with pool.acquire() as c, c.transaction():
            o = await c.fetchrow(
                "SELECT id, amount, currency, status, user_id FROM orders WHERE ref = $1 FOR UPDATE", ref
            )
            assert o is not None
            if await c.fetchval(
                "SELECT 1 FROM payments WHERE provider = 'telegram' AND charge_id = $1", f"c{uid}"
            ):
                return False
            await c.execute(
                "INSERT INTO payments (provider, charge_id, order_id, order_ref, amount, currency, status, created_at) "
                "VALUES ('telegram', $1, $2, $3, $4, 'XTR', 'accepted', $5)",
                f"c{uid}",
                o[0],
                ref,
                o[1],
                now,
            )
            sold = await c.fetch(
                "UPDATE keys SET status = 'sold', sold_at = $1 WHERE order_id = $2 AND status = 'reserved' RETURNING id",
                now,
                o[0],
            )
            if len(sold) != 1:
                raise RuntimeError("short delivery")
            res = await c.execute(
                "UPDATE orders SET status = 'delivered', paid_at = $1, delivered_at = $1 WHERE id = $2 AND status = 'pending'",
                now,
                o[0],
            )
            if res != "UPDATE 1":
                raise RuntimeError("order changed")
            for action in ("payment_confirmed", "keys_delivered"):
                await c.execute(
                    "INSERT INTO audit_log (at, actor, action, product_id, order_id, detail) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    now,
                    "payment:telegram",
                    action,
                    pid,
                    o[0],
                    json.dumps({"keys": [sold[0][0]]}),
                )
            await c.execute(
                "INSERT INTO outbox (user_id, kind, payload, status, attempts, next_attempt_at, created_at) "
                "VALUES ($1, 'order_delivered', $2, 'pending', 0, $3, $3)",
                o[4],
                json.dumps({"order_ref": ref}),
                now,
            )
        return True

    try:
        return await drive(users, concurrency, one)
    finally:
        await pool.close()


async def run_raw(url: str | None, n: int, concurrency: int) -> tuple[float, int]:
    db = await fresh_database(url)
    try:
        pid, users = await seed(db, n)
        runner = run_raw_sqlite if db.is_sqlite else run_raw_postgres
        return await runner(db, pid, users, concurrency)
    finally:
        await db.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    ap.add_argument("--orders", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    kind = "postgresql" if args.database_url and args.database_url.startswith("postgres") else "sqlite"
    driver = "asyncpg" if kind == "postgresql" else "aiosqlite"
    print(f"orders benchmark: {kind}, {args.concurrency} concurrent buyers, {args.orders} orders of one key")
    # Alternate the two sides so that a machine getting faster or slower mid-run favours neither; report
    # each side's best round.
    ours, raw = 0.0, 0.0
    for _ in range(args.rounds):
        ours_t, ours_n = await run_core(args.database_url, args.orders, args.concurrency)
        raw_t, raw_n = await run_raw(args.database_url, args.orders, args.concurrency)
        assert ours_n == raw_n == args.orders, (ours_n, raw_n)
        ours, raw = max(ours, ours_n / ours_t), max(raw, raw_n / raw_t)
    print(
        f"  keyshop core services          {ours:8.0f} orders/s  (best of {args.rounds} alternating rounds)"
    )
    print(
        f"  hand-written SQL ({driver})     {raw:8.0f} orders/s  (best of {args.rounds} alternating rounds)"
    )
    print(f"  ratio                          {ours / raw:8.2f}   (target >= 0.5)")


if __name__ == "__main__":
    asyncio.run(main())
