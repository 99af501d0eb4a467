"""Fulfilment: what a payment delivers, in the same transaction: reserved keys, the shared key, an admin's
manual content, a membership's end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core import tables as t
from core.clock import FrozenClock
from core.errors import IntegrityViolation, InvalidInput, InvalidOrderState, OutOfStock
from core.messages import AwaitingManual, KeysDelivered
from core.models import STARS, DeliveryKind, OrderStatus, PaymentStatus
from core.services import Services
from tests.conftest import buyer, draft, key_statuses, outbox_kinds, pay, payment_row, sql, stocked

# ---------------------------------------------------------------- delivery


async def test_payment_delivers_the_reserved_keys_and_queues_the_buyers_message(shop: Services) -> None:
    pid = await stocked(shop, 3)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 2, STARS)
    res = await pay(shop, order)
    assert res.outcome is PaymentStatus.ACCEPTED and not res.replay
    assert res.order is not None and res.order.status is OrderStatus.DELIVERED
    assert await key_statuses(shop, pid) == {"available": 1, "sold": 2}
    assert await outbox_kinds(shop) == [KeysDelivered.KIND]
    keys = (await shop.orders.reveal(order.ref, user_id=uid, actor="user", reason="test")).keys
    assert len(set(keys)) == 2 and all(k.startswith("KEY-") for k in keys)


async def test_delivery_short_of_keys_rolls_back_the_whole_payment(shop: Services) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    await sql(  # simulate corruption: one reserved key slips out of the order
        shop, update(t.keys).where(t.keys.c.order_id == order.id, t.keys.c.id == 1).values(status="available")
    )
    with pytest.raises(IntegrityViolation):
        await pay(shop, order)
    assert (await shop.orders.get(order.ref)).status is OrderStatus.PENDING
    assert await outbox_kinds(shop) == []
    assert await payment_row(shop, "ch-1") is None


# ---------------------------------------------------------------- delivery kinds


async def test_a_shared_key_product_gives_every_buyer_the_same_key(shop: Services) -> None:
    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.SHARED))
    u1, u2 = await buyer(shop, "1"), await buyer(shop, "2")
    with pytest.raises(OutOfStock):
        await shop.checkout.checkout(u1, pid, 1, STARS)
    await shop.stock.set_shared_key(pid, "WIFI-PASSWORD-2026")
    o1 = await shop.checkout.checkout(u1, pid, 1, STARS)
    o2 = await shop.checkout.checkout(u2, pid, 1, STARS)
    await pay(shop, o1, "a")
    await pay(shop, o2, "b")
    k1 = await shop.orders.reveal(o1.ref, user_id=u1, actor="u", reason="t")
    await shop.stock.set_shared_key(pid, "NEW-PASSWORD")  # replacing it keeps what earlier buyers got
    k2 = await shop.orders.reveal(o2.ref, user_id=u2, actor="u", reason="t")
    assert k1.keys == k2.keys == ["WIFI-PASSWORD-2026"]


async def test_a_manual_product_waits_for_the_admin_and_then_delivers(shop: Services) -> None:
    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL, validity_days=30))
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    res = await pay(shop, o)
    assert res.order is not None and res.order.status is OrderStatus.PAID
    assert await outbox_kinds(shop) == [AwaitingManual.KIND]
    with pytest.raises(InvalidInput):
        await shop.orders.deliver_manually(o.ref, "   ", actor="admin:1")
    done = await shop.orders.deliver_manually(o.ref, "account: a@b.c / pass: x", actor="admin:1")
    assert done.status is OrderStatus.DELIVERED and done.membership_expires_at is not None
    assert (await shop.orders.reveal(o.ref, user_id=uid, actor="u", reason="t")).keys == [
        "account: a@b.c / pass: x"
    ]
    with pytest.raises(InvalidOrderState):
        await shop.orders.deliver_manually(o.ref, "again", actor="admin:1")


async def test_a_membership_code_expires_its_validity_days_after_delivery(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 1, validity_days=30)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    clock.advance(minutes=5)
    res = await pay(shop, o)
    assert res.order is not None
    assert res.order.membership_expires_at == clock.now() + timedelta(days=30)
