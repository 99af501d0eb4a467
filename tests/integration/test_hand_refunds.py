"""Refunds made by hand, on both databases: the charges the channel cannot pay back (fiat, a payment marked
paid) are recorded as returned with an admin's note, the payer is told, the order leaves what needs an
admin; Stars are left to the channel; a second record changes nothing; operators never touch money."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import tables as t
from core.context import UnitOfWork
from core.errors import InvalidInput, NotPermitted, OrderNotFound
from core.messages import RefundMade
from core.models import STARS, OrderStatus, PaymentStatus
from core.roles import Grant, Role
from core.services import Services
from tests.conftest import buyer, outbox_rows, pay, stocked

ADMIN = Grant(Role.ADMIN)


async def _audit(shop: Services, action: str) -> list[tuple[str, dict[str, object]]]:
    def read(uow: UnitOfWork) -> list[tuple[str, dict[str, object]]]:
        a = t.audit_log
        q = select(a.c.actor, a.c.detail).where(a.c.action == action).order_by(a.c.id)
        return [(r[0], r[1]) for r in uow.repo.conn.execute(q).all()]

    return await shop.ctx.read(read)


async def _statuses(shop: Services, order_id: int) -> list[tuple[str, str]]:
    rows = await shop.ctx.read(lambda uow: uow.repo.payments.for_order(order_id))
    return sorted((p.provider, str(p.status)) for p in rows)


async def _pending(shop: Services) -> set[str]:
    return {ln.order.ref for ln in (await shop.order_desk.pending(grant=ADMIN)).lines}


async def test_a_fiat_refund_made_by_hand_closes_the_order_tells_the_payer_and_is_recorded_once(
    any_shop: Services,
) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    await pay(shop, order, charge="fiat-1")  # a card payment through Telegram's provider token
    await shop.order_desk.refund(order.ref, grant=ADMIN, actor="telegram:7")
    assert order.ref in await _pending(shop)  # the channel cannot give fiat back: it waits for a hand

    done = await shop.order_desk.refund_by_hand(
        order.ref, "  bank  transfer\nTX-991 ", grant=ADMIN, actor="telegram:7"
    )
    assert [p.charge_id for p in done.payments] == ["fiat-1"]
    assert done.order.status is OrderStatus.REFUNDED
    assert (await shop.orders.get(order.ref)).status is OrderStatus.REFUNDED
    assert await _statuses(shop, order.id) == [("telegram", "refunded")]
    assert order.ref not in await _pending(shop)
    recorded = await _audit(shop, "payment_refunded_by_hand")
    assert recorded == [
        (
            "telegram:7",
            {
                "charge_id": "fiat-1",
                "amount": order.amount,
                "currency": "USD",
                "note": "bank transfer TX-991",
            },
        )
    ]
    told = [(u, p) for u, k, p in await outbox_rows(shop) if k == RefundMade.KIND]
    assert told == [
        (uid, {"order_ref": order.ref, "reason": "admin", "amount": order.amount, "currency": "USD"})
    ]

    again = await shop.order_desk.refund_by_hand(order.ref, "again", grant=ADMIN, actor="telegram:8")
    assert again.payments == [] and again.order.status is OrderStatus.REFUNDED
    assert len(await _audit(shop, "payment_refunded_by_hand")) == 1
    assert len([k for _, k, _ in await outbox_rows(shop) if k == RefundMade.KIND]) == 1


async def test_a_marked_paid_charge_that_lost_the_race_is_returned_by_hand_and_the_delivery_stands(
    any_shop: Services,
) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, "USD")
    await pay(shop, order, charge="tg-1")  # the buyer paid first
    late = await shop.order_desk.mark_paid(order.ref, order.amount, "cash", grant=ADMIN, actor="a")
    assert late.outcome is PaymentStatus.REFUND_DUE
    assert order.ref in await _pending(shop)

    done = await shop.order_desk.refund_by_hand(order.ref, "cash given back", grant=ADMIN, actor="a")
    assert [p.provider for p in done.payments] == ["manual"]
    assert done.order.status is OrderStatus.DELIVERED  # the buyer's own payment is kept
    assert await _statuses(shop, order.id) == [("manual", "refunded"), ("telegram", "accepted")]
    assert order.ref not in await _pending(shop)


async def test_stars_are_left_to_the_channel_and_nothing_is_recorded_by_hand(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await pay(shop, order, charge="star-1")
    await shop.order_desk.refund(order.ref, grant=ADMIN, actor="a")
    done = await shop.order_desk.refund_by_hand(order.ref, "paid back", grant=ADMIN, actor="a")
    assert done.payments == [] and done.order.status is OrderStatus.REFUND_DUE
    assert await _statuses(shop, order.id) == [("telegram", "refund_due")]
    assert await _audit(shop, "payment_refunded_by_hand") == []


async def test_refunds_by_hand_need_a_note_and_the_money_power_and_stay_in_an_operators_scope(
    any_shop: Services,
) -> None:
    shop = any_shop
    theirs, other = await stocked(shop, 2), await stocked(shop, 2, name="Other")
    uid = await buyer(shop)
    orders = {}
    for pid in (theirs, other):
        o = await shop.checkout.checkout(uid, pid, 1, "USD")
        await pay(shop, o, charge=f"fiat-{pid}")
        await shop.order_desk.refund(o.ref, grant=ADMIN, actor="a")
        orders[pid] = o
    desk = shop.order_desk
    with pytest.raises(OrderNotFound):
        await desk.refund_by_hand(
            orders[other].ref, "x", grant=Grant(Role.OPERATOR, frozenset({theirs})), actor="op"
        )
    with pytest.raises(NotPermitted):
        await desk.refund_by_hand(orders[theirs].ref, "x", grant=Grant(Role.OPERATOR), actor="op")
    for note in ("", "   ", "x" * 201):
        with pytest.raises(InvalidInput):
            await desk.refund_by_hand(orders[theirs].ref, note, grant=ADMIN, actor="a")
    with pytest.raises(OrderNotFound):
        await desk.refund_by_hand("NOSUCHREF", "x", grant=ADMIN, actor="a")
    for o in orders.values():
        assert (await shop.orders.get(o.ref)).status is OrderStatus.REFUND_DUE
    assert await _audit(shop, "payment_refunded_by_hand") == []
