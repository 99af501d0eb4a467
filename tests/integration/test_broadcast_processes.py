"""Two bot processes on one database (two connection pools), on both databases: a broadcast taken up by
both writes each recipient's message once, each message is claimed by one sender only, and one process at
a time leads it (writes its recipients, edits its progress message) until it lets go or its lease runs
out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, insert, select

from core import tables as t
from core.clock import FrozenClock
from core.context import Context, ShopConfig
from core.db import Database
from core.repositories.broadcasts import Audience
from core.services import Services
from core.services.broadcasts import LEASE
from core.vault import Vault
from tests.conftest import query, sql, stocked

ALL = Audience("all")
N = 157


@pytest.fixture
async def other(any_db: Database, vault: Vault, clock: FrozenClock) -> AsyncIterator[Services]:
    """A second process's services: its own connection pool on the same database."""
    db = Database(any_db.url, pool_size=20)
    yield Services(Context(db=db, vault=vault, config=ShopConfig(currency="USD"), clock=clock))
    await db.dispose()


async def _buyers(shop: Services, clock: FrozenClock, n: int) -> None:
    pid = await stocked(shop, 0)
    now = clock.now()
    users = [{"channel": "telegram", "external_id": str(7000 + i), "created_at": now} for i in range(n)]
    await sql(shop, insert(t.users).values(users))
    ids = [r[0] for r in await query(shop, select(t.users.c.id).order_by(t.users.c.id))]
    orders = [
        {
            "ref": f"R{uid}",
            "user_id": uid,
            "product_id": pid,
            "quantity": 1,
            "currency": "XTR",
            "amount": 50,
            "status": "delivered",
            "created_at": now,
            "expires_at": now,
            "paid_at": now,
        }
        for uid in ids
    ]
    await sql(shop, insert(t.orders).values(orders))


async def _started(shop: Services) -> int:
    bid, _ = await shop.broadcasts.save_draft("telegram", ALL, "Sale!", actor="telegram:1")
    await shop.broadcasts.start(bid, actor="telegram:1")
    return bid


async def test_two_processes_writing_one_broadcasts_recipients_write_each_once(
    any_shop: Services, other: Services, clock: FrozenClock
) -> None:
    await _buyers(any_shop, clock, N)
    bid = await _started(any_shop)
    any_shop.broadcasts.chunk = other.broadcasts.chunk = 7  # many chunks, so the two interleave
    await asyncio.gather(any_shop.broadcasts.enqueue_all(bid), other.broadcasts.enqueue_all(bid))
    o = t.outbox
    rows = await query(
        any_shop, select(o.c.user_id, func.count()).where(o.c.broadcast_id == bid).group_by(o.c.user_id)
    )
    assert len(rows) == N and {n for _, n in rows} == {1}
    row = await any_shop.broadcasts.get(bid)
    assert row.status == "sending" and row.recipients == N


async def test_two_senders_claim_each_broadcast_message_once(
    any_shop: Services, other: Services, clock: FrozenClock
) -> None:
    await _buyers(any_shop, clock, N)
    bid = await _started(any_shop)
    await any_shop.broadcasts.enqueue_all(bid)
    claimed: list[list[int]] = [[], []]

    async def sender(services: Services, mine: list[int]) -> None:
        while batch := await services.outbox.claim("telegram", limit=10, bulk=5):
            mine.extend(m.id for m in batch)
            await services.outbox.sent_many([m.id for m in batch])

    await asyncio.gather(sender(any_shop, claimed[0]), sender(other, claimed[1]))
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == N
    p = await any_shop.broadcasts.progress(bid)
    assert p.finished and (p.delivery.sent, p.broadcast.recipients) == (N, N)


async def test_one_process_leads_a_broadcast_until_it_lets_go_or_its_lease_runs_out(
    any_shop: Services, other: Services, clock: FrozenClock
) -> None:
    await _buyers(any_shop, clock, 3)
    bid = await _started(any_shop)
    a, b = any_shop.broadcasts, other.broadcasts
    both = await asyncio.gather(a.hold(bid, runner="a"), b.hold(bid, runner="b"))
    assert sorted(both) == [False, True]  # never both
    leader, follower = ("a", "b") if both[0] else ("b", "a")
    assert await a.hold(bid, runner=leader) is True  # renewing
    assert await b.hold(bid, runner=follower) is False
    await b.shown(bid, "by-the-follower", runner=follower)  # only the leader records what is shown
    await a.shown(bid, "by-the-leader", runner=leader)
    assert (await a.get(bid)).progress_shown == "by-the-leader"

    await a.let_go(bid, runner=follower)  # only the leader lets go
    assert await b.hold(bid, runner=follower) is False
    await a.let_go(bid, runner=leader)  # stopping: the other takes it at once
    assert await b.hold(bid, runner=follower) is True
    assert (await b.get(bid)).progress_shown == "by-the-leader"  # it edits only when the figures changed

    clock.advance(seconds=LEASE.total_seconds() - 1)
    assert await a.hold(bid, runner=leader) is False
    clock.advance(seconds=2)  # the follower crashed: its lease ran out
    assert await a.hold(bid, runner=leader) is True

    await a.cancel(bid, actor="telegram:1")
    assert (await a.progress(bid)).finished
    assert await a.hold(bid, runner=leader) is None and await b.hold(bid, runner=follower) is None


async def test_the_process_that_confirms_a_broadcast_leads_it_first(
    any_shop: Services, other: Services, clock: FrozenClock
) -> None:
    await _buyers(any_shop, clock, 2)
    bid, _ = await any_shop.broadcasts.save_draft("telegram", ALL, "Sale!", actor="telegram:1")
    await any_shop.broadcasts.start(bid, actor="telegram:1", runner="a")
    assert await other.broadcasts.hold(bid, runner="b") is False  # it drew the message: no other edits it
    assert await any_shop.broadcasts.hold(bid, runner="a") is True
