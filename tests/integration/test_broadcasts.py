"""Broadcasts on both databases: who the audiences hold, recipients written in bounded chunks (100,000 of
them without holding them in memory), the shop's own deliveries ahead of a running broadcast, cancel, and
recipients who blocked the bot counted as blocked and never tried."""

from __future__ import annotations

import time
import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from core import tables as t
from core.clock import FrozenClock
from core.errors import BroadcastNotDraft, BroadcastWithdrawn, InvalidInput, ProductNotFound
from core.models import STARS
from core.repositories.broadcasts import Audience
from core.services import Services
from tests.conftest import buyer, query, sql, stocked

ALL = Audience("all")


async def _users(shop: Services, clock: FrozenClock, specs: list[dict[str, Any]]) -> list[int]:
    """Users, each with orders ``(product id, status, paid days ago or None)``."""
    now = clock.now()
    ids = []
    for n, spec in enumerate(specs):
        rows = await sql(
            shop,
            insert(t.users)
            .values(
                channel=spec.get("channel", "telegram"),
                external_id=str(5000 + n),
                blocklisted=spec.get("blocklisted", False),
                bot_blocked=spec.get("bot_blocked", False),
                created_at=now,
            )
            .returning(t.users.c.id),
        )
        uid = rows[0][0]
        ids.append(uid)
        for k, (pid, status, days_ago) in enumerate(spec.get("orders", [])):
            paid = now - timedelta(days=days_ago) if days_ago is not None else None
            await sql(shop, insert(t.orders).values(**_order(f"R{uid}x{k}", uid, pid, status, paid, now)))
    return ids


def _order(ref: str, uid: int, pid: int, status: str, paid: Any, now: Any) -> dict[str, Any]:
    return {
        "ref": ref,
        "user_id": uid,
        "product_id": pid,
        "quantity": 1,
        "currency": "XTR",
        "amount": 50,
        "status": status,
        "created_at": now,
        "expires_at": now,
        "paid_at": paid,
    }


async def _outbox(shop: Services, broadcast_id: int) -> dict[str, int]:
    o = t.outbox
    rows = await query(
        shop,
        select(o.c.status, func.count()).where(o.c.broadcast_id == broadcast_id).group_by(o.c.status),
    )
    return dict(rows)  # type: ignore[arg-type]


async def test_audiences_hold_exactly_the_buyers_they_name(any_shop: Services, clock: FrozenClock) -> None:
    shop = any_shop
    p1, p2 = await stocked(shop, 0), await stocked(shop, 0, name="Other")
    a, b, _c, _d, _e, _f, g, h = await _users(
        shop,
        clock,
        [
            {"orders": [(p1, "delivered", 2)]},  # a: bought p1 two days ago
            {"orders": [(p2, "refunded", 40)]},  # b: bought p2 40 days ago (since refunded: still a buyer)
            {"orders": [(p1, "pending", None), (p1, "expired", None)]},  # c: never paid: no buyer
            {},  # d: never ordered
            {"orders": [(p1, "delivered", 1)], "blocklisted": True},  # e: banned
            {"orders": [(p1, "delivered", 1)], "channel": "wechat"},  # f: another channel
            {"orders": [(p2, "delivered", 5)], "bot_blocked": True},  # g: blocked the bot (still counted)
            {"orders": [(p1, "paid", 0)]},  # h: paid, awaiting delivery
        ],
    )
    bc = shop.broadcasts
    assert await bc.count("telegram", ALL) == 4  # a, b, g, h
    assert await bc.count("telegram", Audience("product", product_id=p1)) == 2  # a, h
    assert await bc.count("telegram", Audience("product", product_id=p2)) == 2  # b, g
    assert await bc.count("telegram", Audience("active", days=7)) == 3  # a, g, h
    assert await bc.count("telegram", Audience("active", days=1)) == 1  # h
    with pytest.raises(ProductNotFound):
        await bc.count("telegram", Audience("product", product_id=999))
    for bad in (Audience("active", days=0), Audience("active", days=366), Audience("everyone")):
        with pytest.raises(InvalidInput):
            await bc.count("telegram", bad)

    bid, count = await bc.save_draft("telegram", Audience("active", days=7), "<b>Hi</b>", actor="telegram:1")
    assert count == 3
    await bc.start(bid, actor="telegram:1")
    await bc.enqueue_all(bid)
    o = t.outbox
    users = await query(shop, select(o.c.user_id).where(o.c.broadcast_id == bid).order_by(o.c.user_id))
    assert [u for (u,) in users] == sorted([a, g, h])
    _ = b


async def test_a_hundred_thousand_recipients_are_written_in_bounded_chunks_and_memory(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    pid = await stocked(shop, 0)
    n = 100_000
    now = clock.now()
    users = [
        {"id": i, "channel": "telegram", "external_id": str(10_000 + i), "created_at": now}
        for i in range(1, n + 1)
    ]
    await sql(shop, insert(t.users), users)
    orders = [_order(f"R{i}", i, pid, "delivered", now, now) for i in range(1, n + 1)]
    await sql(shop, insert(t.orders), orders)
    del users, orders

    bc = shop.broadcasts
    bid, count = await bc.save_draft("telegram", ALL, "Sale!", actor="telegram:1")
    assert count == n
    await bc.start(bid, actor="telegram:1")
    chunks = 0
    tracemalloc.start()
    started = time.monotonic()
    try:
        while await bc.enqueue_next(bid):
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    took = time.monotonic() - started
    assert chunks == n // bc.chunk  # 2,000 recipients a transaction (and one finding none left)
    assert peak < 4_000_000, f"enqueueing held {peak} bytes"
    assert took < 60, took
    assert await _outbox(shop, bid) == {"pending": n}
    progress = await bc.progress(bid)
    assert (progress.broadcast.status, progress.broadcast.recipients, progress.left) == ("sending", n, n)


async def test_the_shops_own_deliveries_go_out_ahead_of_a_running_broadcast(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    pid = await stocked(shop, 5)
    await _users(shop, clock, [{"orders": [(pid, "delivered", 1)]} for _ in range(60)])
    bid, _ = await shop.broadcasts.save_draft("telegram", ALL, "Sale!", actor="telegram:1")
    await shop.broadcasts.start(bid, actor="telegram:1")
    await shop.broadcasts.enqueue_all(bid)
    order = await shop.checkout.checkout(await buyer(shop, "late"), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", order.ref, order.amount, STARS)  # written last

    first = await shop.outbox.claim("telegram", limit=100, bulk=20)
    assert first[0].kind == "order_delivered"  # the delivery first, then at most `bulk` of the broadcast
    assert [m.kind for m in first[1:]] == ["broadcast"] * 20
    second = await shop.outbox.claim("telegram", limit=100, bulk=20)
    assert [m.kind for m in second] == ["broadcast"] * 20


async def test_cancel_stops_what_is_not_sent_once_and_the_counts_end_consistent(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    shop.broadcasts.chunk = 4
    pid = await stocked(shop, 0)
    await _users(shop, clock, [{"orders": [(pid, "delivered", 1)]} for _ in range(10)])
    bc = shop.broadcasts
    bid, _ = await bc.save_draft("telegram", ALL, "Sale!", actor="telegram:1")
    await bc.start(bid, actor="telegram:1")
    assert await bc.enqueue_next(bid)  # 4 of 10 written
    claimed = await shop.outbox.claim("telegram", bulk=3)
    assert len(claimed) == 3
    assert await bc.text_to_send(bid) == "Sale!"
    await shop.outbox.sent(claimed[0].id)

    assert await bc.cancel(bid, actor="telegram:2")
    assert not await bc.cancel(bid, actor="telegram:2")  # idempotent
    assert not await bc.enqueue_next(bid)  # nobody else gets written
    with pytest.raises(BroadcastWithdrawn):  # the sender holding the other two withdraws them
        await bc.text_to_send(bid)
    mid = await bc.progress(bid)
    assert not mid.finished and mid.left == 2
    await shop.outbox.withdrawn(claimed[1].id, "cancelled")
    await shop.outbox.sent(claimed[2].id)  # it was on its way before the cancel
    done = await bc.progress(bid)
    assert done.finished and done.broadcast.status == "cancelled"
    d = done.delivery
    assert (d.sent, d.cancelled, d.failed, d.blocked, d.left) == (2, 2, 0, 0, 0)
    assert done.broadcast.recipients == 4 == d.total
    assert await shop.outbox.claim("telegram") == []
    with pytest.raises(BroadcastNotDraft):
        await bc.start(bid, actor="telegram:1")
    assert await bc.progress(bid) == done  # kept as it ended


async def test_buyers_who_blocked_the_bot_are_counted_blocked_and_never_retried(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    pid = await stocked(shop, 0)
    await _users(
        shop,
        clock,
        [
            {"orders": [(pid, "delivered", 1)], "bot_blocked": True},  # known to have blocked the bot
            {"orders": [(pid, "delivered", 1)]},  # blocks it during the broadcast
            {"orders": [(pid, "delivered", 1)]},
        ],
    )
    bc = shop.broadcasts
    bid, count = await bc.save_draft("telegram", ALL, "Sale!", actor="telegram:1")
    assert count == 3
    await bc.start(bid, actor="telegram:1")
    await bc.enqueue_all(bid)
    claimed = await shop.outbox.claim("telegram")
    assert len(claimed) == 2  # the one who blocked the bot earlier is not tried
    await shop.outbox.undeliverable(claimed[0].id, "403 Forbidden: bot was blocked by the user")
    await shop.outbox.sent(claimed[1].id)
    clock.advance(hours=1)
    assert await shop.outbox.claim("telegram") == []
    done = await bc.progress(bid)
    assert done.finished and done.broadcast.status == "done"
    assert (done.delivery.sent, done.delivery.blocked, done.delivery.failed) == (1, 2, 0)
    assert (done.broadcast.sent, done.broadcast.blocked) == (1, 2)
