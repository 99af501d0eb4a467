"""Refunds: keys the buyer never saw return to stock, anything seen or written by hand is voided, and every
charge is paid back to whoever paid it."""

from __future__ import annotations

import pytest

from core import tables as t
from core.errors import InvalidOrderState, OutOfStock
from core.messages import RefundDue
from core.models import STARS, DeliveryKind, OrderStatus, OwedPayment
from core.services import Services
from tests.conftest import buyer, draft, key_statuses, outbox_rows, pay, sql, stocked

# ---------------------------------------------------------------- what a refund does to the keys


async def test_refund_before_the_buyer_saw_the_keys_returns_them_to_stock(shop: Services) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    await pay(shop, o)
    refunded = await shop.refunds.request_refund(o.ref, actor="admin:1")
    assert refunded.status is OrderStatus.REFUND_DUE
    assert await key_statuses(shop, pid) == {"available": 2}
    assert await shop.refunds.refunds_due(o.ref) == [
        OwedPayment("telegram", "ch-1", o.amount, STARS, payer_id=o.user_id)
    ]
    done = await shop.refunds.complete_refund("telegram", "ch-1", actor="admin:1")
    assert done.order is not None and done.order.status is OrderStatus.REFUNDED
    assert (await shop.refunds.complete_refund("telegram", "ch-1", actor="admin:1")).replay


async def test_refund_after_the_keys_were_revealed_voids_them_for_good(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 2, STARS)
    await pay(shop, o)
    await shop.orders.reveal(o.ref, user_id=uid, actor="user", reason="delivery")
    await shop.refunds.request_refund(o.ref, actor="admin:1")
    assert await key_statuses(shop, pid) == {"void": 2}
    with pytest.raises(OutOfStock):
        await shop.checkout.checkout(uid, pid, 1, STARS)


async def test_refunding_an_unseen_manual_delivery_voids_the_content_instead_of_stocking_it(
    shop: Services,
) -> None:
    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    await shop.orders.deliver_manually(o.ref, "account: a@b.c / pass: x", actor="admin:1")
    await shop.refunds.request_refund(o.ref, actor="admin:1")
    assert set(await key_statuses(shop, pid)) == {"void"}
    assert await shop.stock.available(pid) == 0


async def test_a_pending_order_cannot_be_refunded(shop: Services) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    with pytest.raises(InvalidOrderState):
        await shop.refunds.request_refund(o.ref, actor="admin:1")


# ---------------------------------------------------------------- to whom


async def test_an_admin_refund_goes_to_whoever_paid_and_legacy_payments_to_the_owner(
    shop: Services,
) -> None:
    pid = await stocked(shop, 2)
    owner = await buyer(shop, "1")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "a", o.ref, o.amount, STARS, payer_id=owner)
    await sql(shop, t.payments.update().values(payer_id=None))  # recorded before payers were (NULL)
    await shop.refunds.request_refund(o.ref, actor="admin:1")
    refunds = [(u, p["charge_id"]) for u, k, p in await outbox_rows(shop) if k == RefundDue.KIND]
    assert refunds == [(owner, "a")]
    assert [(p.charge_id, p.payer_id) for p in await shop.refunds.refunds_due(o.ref)] == [("a", owner)]
