"""Refunds completing at the same time for one order still close the order."""

from __future__ import annotations

import asyncio

from core.models import STARS, OrderStatus
from core.services import Services
from tests.conftest import buyer, stocked

ORDERS = 12


async def test_concurrent_refund_completions_leave_the_order_refunded_when_nothing_is_owed(
    any_shop: Services,
) -> None:
    shop = any_shop
    pid = await stocked(shop, ORDERS)
    refs = []
    for i in range(ORDERS):
        uid = await buyer(shop, f"b{i}")
        o = await shop.checkout.checkout(uid, pid, 1, STARS)
        await shop.payments.confirm_payment("telegram", f"a{i}", o.ref, o.amount, STARS, payer_id=uid)
        await shop.payments.confirm_payment("telegram", f"b{i}", o.ref, o.amount, STARS, payer_id=uid)
        await shop.refunds.request_refund(o.ref, actor="admin:1")
        assert len(await shop.refunds.refunds_due(o.ref)) == 2
        refs.append(o.ref)

    await asyncio.gather(
        *(
            shop.refunds.complete_refund("telegram", f"{c}{i}", actor="telegram")
            for i in range(ORDERS)
            for c in "ab"
        )
    )
    for ref in refs:
        assert await shop.refunds.refunds_due(ref) == []
        assert (await shop.orders.get(ref)).status is OrderStatus.REFUNDED
