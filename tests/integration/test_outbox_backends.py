"""The outbox's claim locks with SKIP LOCKED on PostgreSQL: two senders never take the same message."""

from __future__ import annotations

import asyncio

from core.models import STARS
from core.services import Services
from tests.conftest import buyer, stocked


async def test_concurrent_senders_split_the_due_messages_without_overlap(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, 12)
    for i in range(12):
        o = await shop.checkout.checkout(await buyer(shop, f"b{i}"), pid, 1, STARS)
        await shop.payments.confirm_payment("telegram", f"c{i}", o.ref, o.amount, STARS)
    batches = await asyncio.gather(*(shop.outbox.claim("telegram", limit=5) for _ in range(4)))
    ids = [m.id for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 12
    assert await shop.outbox.claim("telegram") == []


async def test_a_cursor_survives_and_only_moves_forward(any_shop: Services) -> None:
    cursors = any_shop.cursors
    assert await cursors.get("ledger") == 0
    await cursors.advance("ledger", 200)
    await cursors.advance("ledger", 100)  # a slower instance reporting late
    assert await cursors.get("ledger") == 200
