"""Updates per second, reply latency and bot CPU per update of browse → buy → pay → deliver, keyshop beside
the journey's echo: a bare aiogram bot with no database that makes the same Bot API calls with the same
payloads per update. Measured in the same run, through the same emulator.

    python benchmarks/storefront.py [--buyers 1000] [--concurrency 50] [--rounds 5]
    python benchmarks/storefront.py --database-url postgresql://postgres@127.0.0.1:5432/test   # drops its schema!

Each buyer sends /catalog, taps the product, taps Buy, pays (a pre-checkout query, then the successful
payment) and waits for the keys: five updates, ``--concurrency`` buyers at a time.

What is compared, and why it is fair:

* The Bot API emulator and the buyers run in a process of their own (``benchmarks/emulated.py``); the bot
  under test runs alone in this one, so its CPU time (``time.process_time`` of this process over the
  measured run, all its threads, the SQLite driver's included; PostgreSQL's server is not) is the bot's.
* Each buyer waits only for its own chat's messages and its own query's answer.
* Both bots long-poll the same kind of emulator with its flood limits off, and keyshop's outbox pacing
  (Telegram's 30 messages/s, 1/s per chat) and per-user throttle are lifted: this measures the bots, not
  Telegram's throttling, whose figure the last line gives for scale.
* The anchor is the journey's echo: a warm-up journey through keyshop records every call keyshop makes for
  the buyer (method and parameters, the delivery the outbox sends included) and which update caused it;
  the echo bot answers each update with the same calls, the buyer's chat, query and tapped message filled
  in. The two bots do the same Telegram work; what keyshop does beyond it is its own (database,
  services, middlewares).

* The echo runs in a process of its own that imports aiogram and nothing of keyshop
  (``benchmarks/echo_bot.py``), with Python's garbage collector as it comes: the bot as one writes it.
  keyshop sets its collector once it is up (``bot/heap.py``: startup's objects frozen out of collections,
  the young generation collected less often); a third line shows the echo with that same setting, so that
  what the setting is worth, and what keyshop's own work costs beside the same Telegram work, can both be
  read off (that ratio has no target).

Both bots are warmed up with a few journeys before the measured run. Each round runs keyshop and its echo
(and the echo with keyshop's collector setting), keyshop first in odd rounds and last in even ones, and
the median of the rounds' keyshop/echo ratios is the figure: a virtual machine's speed drifts by tens of percent within a minute, and a ratio of two
runs taken seconds apart is what that drift disturbs least. A thousand journeys a run (five thousand
updates): with two hundred, the echo's run lasted well under a second, and startup's first moments
weighed on the figure.
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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.buyers import CHAT, MESSAGE, QUERY
from benchmarks.common import fresh_database
from benchmarks.echo_bot import Calls, EchoProcess
from benchmarks.emulated import TOKEN, EmulatorProcess, percentile
from bot.app import Storefront, make_bot
from bot.heap import settle_heap
from bot.settings import Settings
from core.context import Context
from core.services import Services
from core.services.catalog import ProductDraft
from core.vault import Vault, new_key_spec
from handlers.telegram.middlewares import ThrottleMiddleware

PRODUCT = "Bench key"
UPDATES_PER_JOURNEY = 5
WARM_UP = 5  # journeys before the measured run (the first one recorded for the echo)
# The outbox's pacing lifted: no interval between messages, overall or per chat.
UNPACED = {"per_second": 1e9, "private_interval": 0.0, "group_interval": 0.0}
BUYERS = "benchmarks.buyers"


@dataclass
class Figures:
    wall: float
    cpu: float
    journeys: list[float]
    replies: list[float]
    failed: int
    errors: list[str]

    def updates(self, buyers: int) -> int:
        return (buyers - self.failed) * UPDATES_PER_JOURNEY


async def this_process() -> float:
    return time.process_time()


async def measure(
    emu: EmulatorProcess,
    buyers: int,
    concurrency: int,
    first_uid: int,
    cpu: Callable[[], Awaitable[float]] = this_process,
) -> Figures:
    """Warm up, then run ``buyers`` journeys and charge the bot's process's CPU time (``cpu``) over them
    to the bot."""
    await emu.run(
        f"{BUYERS}:journeys",
        first_uid=first_uid,
        buyers=WARM_UP - 1,
        concurrency=concurrency,
        product=PRODUCT,
    )
    start = await cpu()
    result = await emu.run(
        f"{BUYERS}:journeys",
        first_uid=first_uid + WARM_UP,
        buyers=buyers,
        concurrency=concurrency,
        product=PRODUCT,
    )
    used = await cpu() - start
    return Figures(
        result["wall"], used, result["journeys"], result["replies"], result["failed"], result["errors"]
    )


# ---------------------------------------------------------------------------------------------- keyshop


@asynccontextmanager
async def keyshop(api_url: str, database_url: str | None, keys: int) -> AsyncIterator[Storefront]:
    db = await fresh_database(database_url)
    services = Services(Context(db, Vault.from_spec(new_key_spec())))
    pid = await services.catalog.add_product(ProductDraft(name=PRODUCT, price_stars=5, max_qty=1))
    await services.stock.import_keys(
        pid, io.BytesIO("".join(f"BENCH-{i:06d}\n" for i in range(keys)).encode())
    )
    settings = Settings.load(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="keyshop-bench-")))
    lifted = ThrottleMiddleware(None, rate=1e9, burst=1e9, message_rate=1e9, message_burst=1e9)  # type: ignore[arg-type]
    front = Storefront.build(services, settings, make_bot(TOKEN, api_url), sender=UNPACED, throttle=lifted)
    await front.start_background()
    await front.start_polling()
    settle_heap()  # as keyshop run does once the shop is up
    try:
        yield front
    finally:
        await front.stop()
        await db.dispose()


async def run_keyshop(buyers: int, concurrency: int, database_url: str | None) -> tuple[Figures, Calls]:
    async with EmulatorProcess(flood_limits=False) as emu, keyshop(emu.url, database_url, buyers + WARM_UP):
        calls: Calls = await emu.run(f"{BUYERS}:record_journey", uid=1, product=PRODUCT)
        return await measure(emu, buyers, concurrency, first_uid=1000), calls


# ---------------------------------------------------------------------------------------------- the echo


async def run_echo(buyers: int, concurrency: int, calls: Calls, *, settled: bool = False) -> Figures:
    async with (
        EmulatorProcess(flood_limits=False) as emu,
        EchoProcess(emu.url, calls, (CHAT, QUERY, MESSAGE), settled=settled) as echo,
    ):
        return await measure(emu, buyers, concurrency, first_uid=1000, cpu=echo.cpu)


# ---------------------------------------------------------------------------------------------- report


def line(label: str, f: Figures, buyers: int) -> str:
    rate = f.updates(buyers) / f.wall
    per_update = f.cpu / max(1, f.updates(buyers)) * 1000
    return (
        f"  {label:<32}{rate:7.0f} updates/s   reply p50 {percentile(f.replies, 50) * 1000:5.0f} ms"
        f"  p99 {percentile(f.replies, 99) * 1000:5.0f} ms   journey p50 {percentile(f.journeys, 50) * 1000:5.0f} ms"
        f"   bot CPU {per_update:5.2f} ms/update"
    )


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buyers", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5, help="keyshop/echo pairs, run one after the other")
    ap.add_argument(
        "--database-url", help="default: a temporary SQLite file (PostgreSQL: its schema is dropped)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    kind = "postgresql" if args.database_url else "sqlite"
    print(
        f"storefront benchmark: {kind}, {args.buyers} buyers, {args.concurrency} at a time, "
        f"{UPDATES_PER_JOURNEY} updates each; emulator and buyers in their own process; "
        f"{args.rounds} rounds of keyshop and its echo (in turn first)"
    )
    ratios: list[float] = []
    failed: list[tuple[str, Figures]] = []
    calls: Calls = {}
    for n in range(1, args.rounds + 1):
        if n % 2:
            ours, calls = await run_keyshop(args.buyers, args.concurrency, args.database_url)
            echo = await run_echo(args.buyers, args.concurrency, calls)
            settled = await run_echo(args.buyers, args.concurrency, calls, settled=True)
        else:  # the other way round, so that a drift within a round favours neither side
            echo = await run_echo(args.buyers, args.concurrency, calls)
            settled = await run_echo(args.buyers, args.concurrency, calls, settled=True)
            ours, calls = await run_keyshop(args.buyers, args.concurrency, args.database_url)
        if n == 1:
            per_update = {key: [m for m, _ in c] for key, c in calls.items()}
            print(
                f"  calls per update (both bots)    {sum(map(len, per_update.values()))} in all: {per_update}"
            )
        print(f"  round {n}")
        print(line("keyshop browse → buy → deliver", ours, args.buyers))
        print(line("journey's echo (no database)", echo, args.buyers))

        def rate(f: Figures) -> float:
            return f.updates(args.buyers) / f.wall

        ratio = rate(ours) / rate(echo)
        cpu_ratio = (ours.cpu / max(1, ours.updates(args.buyers))) / (
            echo.cpu / max(1, echo.updates(args.buyers))
        )
        print(f"  ratio keyshop/echo              {ratio:7.2f} updates/s;  CPU per update x{cpu_ratio:.1f}")
        print(line("echo, collector as keyshop's", settled, args.buyers))
        print(f"  ratio keyshop/that echo         {rate(ours) / rate(settled):7.2f} updates/s   (no target)")
        ratios.append(ratio)
        failed += [
            (name, f) for name, f in (("keyshop", ours), ("echo", echo), ("echo", settled)) if f.failed
        ]
    print(
        f"  median ratio of {len(ratios)} rounds    {statistics.median(ratios):7.2f} updates/s (target >= 0.5)"
        f";  rounds: {', '.join(f'{r:.2f}' for r in ratios)}"
    )
    print(
        f"  Telegram's broadcast limit          30 messages/s: at most 30 deliveries/s "
        f"({30 * UPDATES_PER_JOURNEY} updates/s of these journeys)"
    )
    for name, f in failed:
        print(f"  {name}: {f.failed} journeys failed, e.g. {f.errors}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
