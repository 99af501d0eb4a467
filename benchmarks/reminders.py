"""Membership reminders against Telegram's flood limits: ``--reminders`` members whose code ends within a
day, the reminder job run by ``--schedulers`` schedulers at once, and the outbox sender delivering through
the Bot API emulator with Telegram's limits on (30 messages a second overall, about 1 a second per chat,
429 with ``retry_after`` beyond them).

    python benchmarks/reminders.py [--reminders 10000] [--schedulers 1]
    python benchmarks/reminders.py --database-url postgresql://postgres@127.0.0.1:5432/test --schedulers 2
                                                                            # drops its schema!

The baseline is the platform's own: at 30 messages a second, ``N`` reminders cannot reach their buyers in
less than ``N / 30`` seconds. Printed: the time from the first scheduler starting to the last reminder
accepted by Telegram, that theoretical minimum, and their ratio (minimum / ours, target >= 0.9); then what
could go wrong, each counted (target 0): reminders lost (a member never reminded), duplicated (a member
reminded twice), and 429s left unhandled (a message given up after Telegram's refusal). The 429s Telegram
answered and the sender honoured are shown too: a sender that keeps the pace meets few.

Each scheduler is a ``JobContext`` over its own database engine (its own connections, as a second process
has), running the ``remind_memberships`` job of ``scheduler/jobs.py``: with two, they claim disjoint
batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; turns on SQLite's write lock) and the counts prove
neither wrote a reminder the other did. The sender is the storefront's own (``keyshop run`` builds it the
same way: its pace, its 429 handling), the emulator runs in this process (30 messages a second are
nothing to its loop). Members are seeded by bulk INSERTs, not through checkout, which is not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, func, select

from benchmarks.common import fresh_database
from bot.app import Storefront, make_bot
from bot.settings import Settings
from core import tables as t
from core.context import Context, ShopConfig
from core.db import Database
from core.messages import MembershipReminder
from core.services import Services
from core.vault import Vault, new_key_spec
from sandbox.telegram import Emulator, serve
from scheduler.jobs import JOBS
from scheduler.runner import Runs
from scheduler.spec import JobContext
from tests.conftest import seed_memberships

TOKEN = "4242424242:BENCH-reminders-token-for-the-emulator"
FIRST_CHAT = 5_000_000
TELEGRAM_RATE = 30.0  # messages a second, overall (TELEGRAM_LIMITS.md)


def _failed_after_429(conn: Connection) -> int:
    o = t.outbox
    q = select(func.count()).where(
        o.c.kind == MembershipReminder.KIND, o.c.status == "failed", o.c.last_error.like("%429%")
    )
    return int(conn.execute(q).scalar_one())


async def run(url: str | None, n: int, schedulers: int) -> int:
    spec = new_key_spec()
    db = await fresh_database(url)
    config = ShopConfig(currency="USD")
    services = Services(Context(db, Vault.from_spec(spec), config))
    # n members whose code ends within a day (bulk INSERTs: checkout is not what is measured)
    await seed_memberships(
        services, n, ends_at=datetime.now(UTC) + timedelta(hours=20), first_chat=FIRST_CHAT
    )

    emu = Emulator(token=TOKEN)  # Telegram's flood limits on: 30/s overall, 1/s per chat, 429 beyond
    for i in range(n):
        emu.user(FIRST_CHAT + i, f"Member {i}")
    runner, api = await serve(emu)
    settings = Settings.load(_env_file=None, bot_token=TOKEN, telegram_api_url=api, scheduler=False)
    front = Storefront.build(services, settings, make_bot(TOKEN, api))
    sender = asyncio.create_task(front.outbox.run())

    engines = [db] + [Database(db.url.render_as_string(hide_password=False)) for _ in range(schedulers - 1)]
    contexts = [JobContext(Services(Context(e, Vault.from_spec(spec), config))) for e in engines]
    (job,) = [j for j in JOBS if j.name == "remind_memberships"]
    minimum = n / TELEGRAM_RATE
    began = time.monotonic()
    written = await asyncio.gather(*(Runs(ctx).run(job) for ctx in contexts))
    queued = time.monotonic() - began
    deadline = began + minimum * 3 + 60
    delivered = 0
    while delivered < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        delivered = sum(1 for i in range(0, n) if emu.sent.get(FIRST_CHAT + i))
    took = time.monotonic() - began

    reminded = [len(emu.messages(FIRST_CHAT + i)) for i in range(n)]
    lost = sum(1 for c in reminded if c == 0)
    duplicated = sum(c - 1 for c in reminded if c > 1)
    unhandled = await db.read(_failed_after_429)
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    await front.stop()
    await emu.shutdown()
    await runner.cleanup()
    for e in engines:
        await e.dispose()

    kind = "PostgreSQL" if url else "SQLite"
    print(f"{n} reminders, {schedulers} scheduler(s), {kind}, through the emulator at Telegram's limits")
    print(f"  written by the job(s)          {sum(w or 0 for w in written):>8}   in {queued:.2f} s {written}")
    print(f"  all accepted by Telegram in    {took:>8.1f} s")
    print(f"  theoretical minimum at 30/s    {minimum:>8.1f} s")
    print(f"  minimum / keyshop              {minimum / took:>8.2f}   (target >= 0.9)")
    print(f"  lost                           {lost:>8}   (target 0)")
    print(f"  duplicated                     {duplicated:>8}   (target 0)")
    print(f"  unhandled 429                  {unhandled:>8}   (target 0)")
    print(f"  429s answered and honoured     {len(emu.flood_refusals):>8}")
    return 0 if lost == duplicated == unhandled == 0 else 1


async def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reminders", type=int, default=10_000)
    p.add_argument("--schedulers", type=int, default=1, help="reminder jobs run at once, each its own engine")
    p.add_argument("--database-url", help="PostgreSQL URL (its public schema is dropped!); default SQLite")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return await run(args.database_url, args.reminders, max(1, args.schedulers))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
