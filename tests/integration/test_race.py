"""200 buyers race for 50 keys with orders of 1 to 3 keys, each paying (some twice) right after checkout."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sqlalchemy import func, select

from core import tables as t
from core.errors import OutOfStock
from core.models import STARS, OrderStatus, PaymentStatus
from core.services import Services
from core.uow import UnitOfWork
from tests.conftest import buyer, in_read, stocked

BUYERS, KEYS = 200, 50


async def test_the_last_keys_go_to_exactly_one_buyer_each_and_no_order_is_short(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, KEYS, max_qty=3)
    users = [await buyer(shop, f"u{i}") for i in range(BUYERS)]
    rng = random.Random(7)
    wants = {uid: rng.randint(1, 3) for uid in users}
    refused = 0

    async def one(uid: int) -> None:
        nonlocal refused
        await asyncio.sleep(rng.random() / 100)
        try:
            order = await shop.checkout.checkout(uid, pid, wants[uid], STARS)
        except OutOfStock:
            refused += 1
            return
        results = await asyncio.gather(
            *[
                shop.payments.confirm_payment("telegram", f"charge-{uid}", order.ref, order.amount, STARS)
                for _ in range(2 if uid % 5 == 0 else 1)  # a replayed update arriving at the same time
            ]
        )
        assert sum(not r.replay for r in results) == 1
        assert all(r.outcome is PaymentStatus.ACCEPTED for r in results)

    await asyncio.gather(*[one(uid) for uid in users])

    def outcome(uow: UnitOfWork) -> tuple[list[Any], list[Any], int, int]:
        c = uow.conn
        k = t.keys
        sold_keys = select(k.c.id, k.c.order_id).where(k.c.product_id == pid, k.c.status == "sold")
        sold = c.execute(sold_keys).all()
        orders = c.execute(select(t.orders).where(t.orders.c.product_id == pid)).all()
        total = c.execute(select(func.count()).select_from(t.keys)).scalar_one()
        payments = c.execute(select(func.count()).select_from(t.payments)).scalar_one()
        return list(sold), list(orders), total, payments

    sold, orders, total, payments = await in_read(shop, outcome)  # one snapshot of all four

    delivered = [o for o in orders if o.status == OrderStatus.DELIVERED]
    per_order: dict[int, int] = {}
    for _, oid in sold:
        per_order[oid] = per_order.get(oid, 0) + 1
    assert len({kid for kid, _ in sold}) == len(sold)  # a key is sold at most once
    assert {o.id: o.quantity for o in delivered} == per_order  # every delivered order has all its keys
    assert all(o.status == OrderStatus.DELIVERED for o in orders)  # no order left half-done
    assert total == KEYS  # stock conserved: nothing created or lost
    assert len(sold) == KEYS - await shop.stock.available(pid)
    assert KEYS - 2 <= len(sold) <= KEYS  # sold out, but for at most a remainder too small for anyone left
    assert refused == BUYERS - len(delivered)
    assert payments == len(delivered)
