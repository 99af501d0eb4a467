"""Two schedulers on one database (two Services, each over its own engine and connections, as two
processes would be) run the reminder jobs at the same moment, again and again: every reminder is written
once, none twice, none lost, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from core import tables as t
from core.clock import FrozenClock
from core.context import Context
from core.db import Database
from core.models import STARS
from core.services import Services
from core.vault import Vault
from tests.conftest import buyer, query, seed_memberships, stocked

MEMBERS = 240
BATCH = 25  # small batches: the two schedulers' transactions interleave many times per run


async def _written(shop: Services, kind: str) -> Counter[tuple[str, ...]]:
    rows = await query(shop, select(t.outbox.c.payload).where(t.outbox.c.kind == kind))
    return Counter(tuple(str(v) for v in p.values()) for (p,) in rows)


async def test_two_schedulers_never_write_the_same_reminder_twice(
    any_shop: Services, vault: Vault, clock: FrozenClock
) -> None:
    shop = any_shop
    twin_db = Database(shop.ctx.db.url, pool_size=4)
    twin = Services(Context(db=twin_db, vault=vault, config=shop.ctx.config, clock=clock))
    try:
        schedulers = (shop, twin, shop, twin)
        pid = await stocked(shop, 30)
        for i in range(30):
            await shop.checkout.checkout(await buyer(shop, f"p{i}"), pid, 1, STARS)
        clock.advance(minutes=11)
        for n in (30, 0):  # the second round finds everything done
            assert sum(await asyncio.gather(*(s.reminders.remind_invoices(batch=2) for s in schedulers))) == n
        invoices = await _written(shop, "invoice_reminder")
        assert len(invoices) == 30 and max(invoices.values()) == 1

        ends = clock.now() + timedelta(days=3, minutes=5)
        refs = await seed_memberships(shop, MEMBERS, ends_at=ends)
        for moment, stage in ((timedelta(days=3), "d3"), (timedelta(days=1), "d1"), (timedelta(), "expired")):
            clock.advance(seconds=(ends - moment - clock.now()).total_seconds() + 1)
            for n in (MEMBERS, 0):
                runs = [s.reminders.remind_memberships(batch=BATCH) for s in schedulers]
                assert sum(await asyncio.gather(*runs)) == n, stage
            written = await _written(shop, "membership_reminder")
            assert max(written.values()) == 1
            assert {ref for ref, s in written if s == stage} == set(refs)
        assert sum((await _written(shop, "membership_reminder")).values()) == 3 * MEMBERS
    finally:
        await twin_db.dispose()
