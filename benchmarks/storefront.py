"""Updates per second and latency of browse → buy → deliver through the Bot API emulator, beside a bare
aiogram echo bot against the same emulator in the same run.

    python benchmarks/storefront.py [--buyers 200] [--concurrency 50]

keyshop: each buyer sends /catalog, taps the product, taps Buy, pays (pre-checkout query + successful
payment) and waits for the key: 5 updates, each answered over HTTP by the real bot, plus the delivery.
Echo bot: the same number of buyers each send 5 messages, waiting for every echo. Both long-poll the same
emulator with its flood limits off, and the outbox's own pacing (Telegram's 30 messages/s) lifted: this
measures the bots, not Telegram's throttling, which the last line prints for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiogram import Dispatcher
from aiogram.types import Message

from benchmarks.common import fresh_database
from bot.app import Storefront, make_bot
from bot.settings import Settings
from core.context import Context
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from handlers.telegram.middlewares import ThrottleMiddleware
from sandbox.telegram import Emulator, serve

TOKEN = "5555555555:BENCHMARK-token-for-the-emulator"
UPDATES_PER_JOURNEY = 5


async def drive(
    n: int, concurrency: int, journey: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(uid: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            await journey(uid)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(one(10_000 + i) for i in range(n)))
    return time.perf_counter() - start, latencies


async def run_keyshop(n: int, concurrency: int, url: str | None = None) -> tuple[float, list[float]]:
    db = await fresh_database(url)
    services = Services(Context(db, Vault.from_spec(new_key_spec())))
    pid = await services.catalog.add_product(ProductDraft(name="Bench key", price_stars=5, max_qty=1))
    await services.stock.import_keys(pid, io.BytesIO("".join(f"BENCH-{i:06d}\n" for i in range(n)).encode()))
    emu = Emulator(token=TOKEN, flood_limits=False, pre_checkout_timeout=30)
    runner, url = await serve(emu)
    settings = Settings.load(_env_file=None, data_dir=Path(tempfile.mkdtemp()))
    front = Storefront.build(
        services, settings, make_bot(TOKEN, url), throttle=ThrottleMiddleware(None, rate=1e9)
    )  # type: ignore[arg-type]
    await front.start_background()
    await front.start_polling()

    async def journey(uid: int) -> None:
        emu.user(uid, "Buyer")
        before = len(emu.messages(uid))
        await emu.send_text(uid, "/catalog")
        listing = await emu.wait_for(uid, after=before, within=60)
        before = len(emu.messages(uid))
        await emu.tap(uid, listing, listing.button("Bench")["callback_data"])
        card = await emu.wait_for(uid, after=before, within=60)
        before = len(emu.messages(uid))
        await emu.tap(uid, card, card.button("Buy")["callback_data"])
        invoice = await emu.wait_for(uid, lambda s: s.method == "sendInvoice", after=before, within=60)
        assert (await emu.pay(uid, invoice))["paid"]
        await emu.wait_for(uid, lambda s: "delivered" in s.text, within=60)

    try:
        return await drive(n, concurrency, journey)
    finally:
        await emu.shutdown()
        await front.stop()
        await runner.cleanup()
        await db.dispose()


async def run_echo(n: int, concurrency: int) -> tuple[float, list[float]]:
    emu = Emulator(token=TOKEN, flood_limits=False)
    runner, url = await serve(emu)
    bot = make_bot(TOKEN, url)
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=10))

    async def journey(uid: int) -> None:
        emu.user(uid, "Buyer")
        for step in range(UPDATES_PER_JOURNEY):
            before = len(emu.messages(uid))
            await emu.send_text(uid, f"echo {step}")
            await emu.wait_for(uid, after=before, within=60)

    try:
        return await drive(n, concurrency, journey)
    finally:
        await emu.shutdown()
        await dp.stop_polling()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
        await runner.cleanup()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else values[0] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buyers", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument(
        "--database-url", help="default: a temporary SQLite file (PostgreSQL: its schema is dropped)"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ours_t, ours_lat = await run_keyshop(args.buyers, args.concurrency, args.database_url)
    echo_t, echo_lat = await run_echo(args.buyers, args.concurrency)
    updates = args.buyers * UPDATES_PER_JOURNEY
    ours, echo = updates / ours_t, updates / echo_t
    kind = "postgresql" if args.database_url else "sqlite"
    print(
        f"storefront benchmark: {kind}, {args.buyers} buyers, {args.concurrency} at a time, {UPDATES_PER_JOURNEY} updates each"
    )
    print(
        f"  keyshop browse → buy → deliver   {ours:7.0f} updates/s   journey p50 {pct(ours_lat, 50):6.0f} ms  p99 {pct(ours_lat, 99):6.0f} ms"
    )
    print(
        f"  bare aiogram echo bot            {echo:7.0f} updates/s   journey p50 {pct(echo_lat, 50):6.0f} ms  p99 {pct(echo_lat, 99):6.0f} ms"
    )
    print(f"  ratio                            {ours / echo:7.2f}   (target >= 0.5)")
    print(
        f"  Telegram's broadcast limit          30 messages/s: at most 30 deliveries/s ({30 * UPDATES_PER_JOURNEY} updates/s of these journeys)"
    )


if __name__ == "__main__":
    asyncio.run(main())
