"""200 buyers race for 50 keys with orders of 1 to 3 keys, each paying (some twice) right after checkout."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sqlalchemy import func, select

from core import tables as t
from core.errors import InvalidOrderState, OutOfStock
from core.models import STARS, OrderStatus, PaymentStatus, UserIdentity
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


NEWCOMERS, FEW_KEYS = 80, 20


async def test_newcomers_racing_for_the_last_keys_are_each_stored_once_and_no_key_goes_twice(
    any_shop: Services,
) -> None:
    """A flash sale's crowd has no rows yet: each first Buy creates its buyer inside the checkout, some
    tapped twice at once, then pays (some twice) or cancels while paying."""
    shop = any_shop
    pid = await stocked(shop, FEW_KEYS, max_qty=2)
    rng = random.Random(11)

    async def one(i: int) -> None:
        who = UserIdentity("telegram", f"n{i}", "en")
        await asyncio.sleep(rng.random() / 100)
        taps = await asyncio.gather(
            *(shop.checkout.checkout_or_reuse(who, pid, 1 + i % 2, STARS) for _ in range(1 + (i % 4 == 0))),
            return_exceptions=True,
        )
        orders = [tap[0] for tap in taps if not isinstance(tap, BaseException)]
        assert all(isinstance(tap, OutOfStock) for tap in taps if isinstance(tap, BaseException))
        if not orders:
            return
        assert len({o.id for o in orders}) == 1  # a double tap reuses the one order
        order, payer = orders[0], orders[0].user_id
        steps = [
            shop.payments.confirm_payment("telegram", f"c{i}", order.ref, order.amount, STARS, payer_id=payer)
        ]
        if i % 5 == 0:
            steps.append(
                shop.payments.confirm_payment(
                    "telegram", f"c{i}", order.ref, order.amount, STARS, payer_id=payer
                )
            )
        if i % 5 == 1:
            steps.append(shop.orders.cancel(order.ref, user_id=payer, actor="test"))
        for r in await asyncio.gather(*steps, return_exceptions=True):
            assert not isinstance(r, BaseException) or isinstance(r, InvalidOrderState), r

    await asyncio.gather(*(one(i) for i in range(NEWCOMERS)))

    def outcome(uow: UnitOfWork) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        c = uow.conn
        users = c.execute(select(t.users.c.external_id)).all()
        keys = c.execute(select(t.keys.c.id, t.keys.c.status, t.keys.c.order_id)).all()
        orders = c.execute(select(t.orders)).all()
        payments = c.execute(select(t.payments.c.order_id, t.payments.c.status)).all()
        return list(users), list(keys), list(orders), list(payments)

    users, keys, orders, payments = await in_read(shop, outcome)
    assert len(users) == len({u.external_id for u in users})  # one row per buyer
    assert len(keys) == FEW_KEYS
    sold: dict[int, int] = {}
    for k in keys:
        assert k.status in ("available", "sold")  # nothing left reserved: every order paid or cancelled
        if k.status == "sold":
            sold[k.order_id] = sold.get(k.order_id, 0) + 1
    delivered = {o.id: o.quantity for o in orders if o.status == OrderStatus.DELIVERED}
    assert sold == delivered  # every delivered order has exactly its keys, nobody else has any
    for o in orders:  # every charge ends delivered or owed back: a cancelled order's payment is refunded
        charges = [p.status for p in payments if p.order_id == o.id]
        assert charges.count(PaymentStatus.ACCEPTED) == (o.id in delivered)
        assert o.status in (OrderStatus.DELIVERED, OrderStatus.REFUND_DUE, OrderStatus.CANCELLED)
