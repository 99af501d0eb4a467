"""A flash sale (秒杀) against Telegram's deadlines: ``--buyers`` buyers tap Buy on one product with ``--keys``
keys, the taps spread evenly over ``--window`` seconds; whoever gets an invoice pays at once.

    python benchmarks/flash_sale.py [--buyers 2000] [--keys 500] [--window 5]
    python benchmarks/flash_sale.py --database-url postgresql://postgres@127.0.0.1:5432/test   # drops its schema!

The Bot API emulator and the buyers run in a process of their own (``benchmarks/emulated.py``), with
Telegram's flood limits on (30 messages/s overall, about 1/s per chat); keyshop runs in this process as
``keyshop run`` builds it (its own outbox pacing and per-user throttle on). Before the sale each buyer has
the product's card in their chat (one buyer opened it through the bot; the others hold the same card, as
if they had opened it earlier and waited for the start).

Printed, measured by the emulator's clock from the buyer's action, which is when Telegram's deadline
starts: how long every callback query (the Buy tap) and every pre-checkout query (the payment) waited for
the bot's answer, p50/p99/max, the part of that the update spent queued before the bot fetched it, and
how many answers missed Telegram's 15 s (callback) and 10 s (pre-checkout) deadlines (the emulator
refuses those answers, as Telegram does; a late pre-checkout answer fails the payment). Then what became
of the stock and of the buyers: keys sold (target: exactly ``--keys``), oversold (0), keys stranded in
reservations nobody can pay, and how the others were turned away.

Exits non-zero when a key was oversold or lost, or the keys sold are not min(keys, buyers).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, func, select

from benchmarks.buyers import summary
from benchmarks.common import fresh_database
from benchmarks.emulated import TOKEN, EmulatorProcess
from bot.app import Storefront, make_bot
from bot.heap import settle_heap
from bot.settings import Settings
from core import tables as t
from core.context import Context
from core.db import Database
from core.models import KeyStatus, OrderStatus
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec

PRODUCT = "Flash key"
CALLBACK_DEADLINE, PRE_CHECKOUT_DEADLINE = 15.0, 10.0
SETTLE = 30.0  # after the buyers are done, how long paid orders may take to be delivered


@asynccontextmanager
async def keyshop(
    api_url: str, database_url: str | None, keys: int
) -> AsyncIterator[tuple[Storefront, Database, int]]:
    db = await fresh_database(database_url)
    services = Services(Context(db, Vault.from_spec(new_key_spec())))
    pid = await services.catalog.add_product(ProductDraft(name=PRODUCT, price_stars=5, max_qty=1))
    data = "".join(f"FLASH-{i:06d}\n" for i in range(keys)).encode()
    await services.stock.import_keys(pid, io.BytesIO(data))
    settings = Settings.load(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="keyshop-flash-")))
    front = Storefront.build(services, settings, make_bot(TOKEN, api_url))
    await front.start_background()
    await front.start_polling()
    settle_heap()  # as keyshop run does once the shop is up
    try:
        yield front, db, pid
    finally:
        await front.stop()
        await db.dispose()


async def stock(db: Database, pid: int) -> dict[str, Any]:
    """Keys by status, orders by status, and delivered orders whose keys are not what they paid for."""
    return await db.read(_stock, pid)


def _stock(conn: Connection, pid: int) -> dict[str, Any]:
    by_status = select(t.keys.c.status, func.count()).where(t.keys.c.product_id == pid)
    keys: dict[str, int] = {
        status: n for status, n in conn.execute(by_status.group_by(t.keys.c.status)).all()
    }
    by_status = select(t.orders.c.status, func.count()).where(t.orders.c.product_id == pid)
    orders: dict[str, int] = {
        status: n for status, n in conn.execute(by_status.group_by(t.orders.c.status)).all()
    }
    per_order = (
        select(t.orders.c.quantity, func.count(t.keys.c.id).label("got"))
        .select_from(t.orders.outerjoin(t.keys, t.keys.c.order_id == t.orders.c.id))
        .where(t.orders.c.product_id == pid, t.orders.c.status == OrderStatus.DELIVERED)
        .group_by(t.orders.c.id, t.orders.c.quantity)
        .subquery()
    )
    short = conn.execute(
        select(func.count()).select_from(per_order).where(per_order.c.got != per_order.c.quantity)
    ).scalar_one()
    delivered_qty = conn.execute(select(func.coalesce(func.sum(per_order.c.quantity), 0))).scalar_one()
    return {"keys": keys, "orders": orders, "short": short, "delivered_qty": delivered_qty}


async def settled(db: Database, pid: int, within: float) -> dict[str, Any]:
    """The stock once no order is left paid-but-undelivered (or after ``within`` seconds)."""
    deadline = time.monotonic() + within
    while True:
        now = await stock(db, pid)
        if not now["orders"].get(OrderStatus.PAID) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


def deadline_line(label: str, timings: dict[str, Any], deadline: float) -> list[str]:
    answered, waited = timings["answered"], timings["waited"]
    late = sum(1 for s in answered if s > deadline) + timings["unanswered"]
    return [
        f"  {label:<26} {len(answered) + timings['unanswered']:5d} queries   answered after {summary(answered)}",
        f"  {'':<26} {'':5}           queued for   {summary(waited)}  (before the bot fetched them)",
        f"  {'':<26} missed Telegram's {deadline:.0f} s: {late}"
        f" ({timings['unanswered']} never answered, {timings['refused']} answers refused)   (target 0)",
    ]


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buyers", type=int, default=2000)
    ap.add_argument("--keys", type=int, default=500)
    ap.add_argument("--window", type=float, default=5.0, help="seconds over which the Buy taps are spread")
    ap.add_argument("--patience", type=float, default=120.0, help="how long a buyer waits for a reply")
    ap.add_argument(
        "--database-url", help="default: a temporary SQLite file (PostgreSQL: its schema is dropped)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    async with EmulatorProcess() as emu, keyshop(emu.url, args.database_url, args.keys) as (_, db, pid):
        card = await emu.run("benchmarks.buyers:open_card", uid=1, product=PRODUCT)
        cpu = time.process_time()
        sale = await emu.run(
            "benchmarks.buyers:flash_sale",
            first_uid=10_000,
            buyers=args.buyers,
            window=args.window,
            card=card,
            patience=args.patience,
        )
        cpu = time.process_time() - cpu
        after = await settled(db, pid, SETTLE)

    keys, orders = after["keys"], after["orders"]
    sold = keys.get(KeyStatus.SOLD, 0)
    reserved = keys.get(KeyStatus.RESERVED, 0)
    available = keys.get(KeyStatus.AVAILABLE, 0)
    accounted = sum(keys.values())
    oversold = max(0, after["delivered_qty"] - args.keys) + after["short"]
    lost = sale["charged"] - sale["refunded"] - orders.get(OrderStatus.DELIVERED, 0)
    expected = min(args.keys, args.buyers)
    kind = "postgresql" if args.database_url else "sqlite"
    print(
        f"flash sale benchmark: {kind}, {args.buyers} buyers tap Buy within {args.window:g} s on one product with "
        f"{args.keys} keys; Telegram's flood limits on; emulator and buyers in their own process"
    )
    print(f"  the sale took {sale['wall']:.1f} s; bot CPU {cpu:.1f} s")
    print(*deadline_line("callback queries (Buy)", sale["callbacks"], CALLBACK_DEADLINE), sep="\n")
    print(*deadline_line("pre-checkout queries", sale["pre_checkouts"], PRE_CHECKOUT_DEADLINE), sep="\n")
    print(f"  keys sold                  {sold:5d}   (target exactly {expected})")
    print(f"  oversold                   {oversold:5d}   (target 0)")
    print(
        f"  still reserved, unpaid     {reserved:5d}   (available {available}; all keys accounted: {accounted == args.keys})"
    )
    print(
        f"  charges                    {sale['charged']:5d}   (refunded {sale['refunded']}, keys received by "
        f"{sale['delivered']}; charged without keys or refund: {lost})"
    )
    print(f"  orders                     {dict(sorted((str(k), v) for k, v in orders.items()))}")
    for outcome, n in sorted(sale["outcomes"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:5d} buyers: {outcome}")
    for outcome, n in sorted(sale["payments"].items(), key=lambda kv: -kv[1]):
        print(f"  {n:5d} payers: {outcome}")
    wrong = oversold or lost or sold != expected or accounted != args.keys
    if wrong:
        print("  FAILED: the stock does not add up (see above)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
