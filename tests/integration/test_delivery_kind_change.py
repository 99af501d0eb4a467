"""A product's delivery kind cannot change under open orders (issue #6, defect 9b)."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from core.errors import DeliveryKindChangeRefused
from core.models import STARS, DeliveryKind, OrderStatus
from core.services import Services
from tests.conftest import buyer, draft, stocked


async def test_the_delivery_kind_of_a_product_with_open_orders_cannot_change(any_shop: Services) -> None:
    pid = await stocked(any_shop, 3)
    pending = await any_shop.checkout.checkout(await buyer(any_shop, "1"), pid, 2, STARS)
    with pytest.raises(DeliveryKindChangeRefused) as e:
        await any_shop.catalog.update_product(pid, delivery_kind=DeliveryKind.MANUAL)
    assert e.value.key == "error-kind-change-open-orders" and e.value.params["orders"] == 1
    product = await any_shop.catalog.product(pid)
    assert product.delivery_kind is DeliveryKind.UNIQUE
    assert (await any_shop.stock.levels(pid))[0].reserved == 2
    # other changes are fine meanwhile
    assert (await any_shop.catalog.update_product(pid, name="Renamed")).name == "Renamed"
    # once the order is settled, the kind may change
    await any_shop.payments.confirm_payment("telegram", "c", pending.ref, pending.amount, STARS)
    assert (await any_shop.orders.get(pending.ref)).status is OrderStatus.DELIVERED
    changed = await any_shop.catalog.update_product(pid, delivery_kind=DeliveryKind.MANUAL)
    assert changed.delivery_kind is DeliveryKind.MANUAL


async def test_a_paid_manual_order_awaiting_delivery_keeps_its_product_manual(any_shop: Services) -> None:
    pid = await any_shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    o = await any_shop.checkout.checkout(await buyer(any_shop), pid, 1, STARS)
    await any_shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    assert (await any_shop.orders.get(o.ref)).status is OrderStatus.PAID
    with pytest.raises(DeliveryKindChangeRefused):
        await any_shop.catalog.update_product(pid, delivery_kind=DeliveryKind.SHARED)
    await any_shop.orders.deliver_manually(o.ref, "done by hand", actor="admin:1")
    await any_shop.catalog.update_product(pid, delivery_kind=DeliveryKind.SHARED)


async def test_once_open_orders_expire_the_kind_changes_and_their_keys_are_back(
    any_shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(any_shop, 2)
    await any_shop.checkout.checkout(await buyer(any_shop), pid, 1, STARS)
    clock.advance(minutes=16)
    assert await any_shop.orders.expire_due() == 1
    changed = await any_shop.catalog.update_product(pid, delivery_kind=DeliveryKind.SHARED)
    assert changed.delivery_kind is DeliveryKind.SHARED
    counts = (await any_shop.stock.levels(pid))[0]
    assert (counts.available, counts.reserved) == (2, 0)
