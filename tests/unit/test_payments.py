"""Payments: a charge is confirmed once, for the right order, amount and currency; pre-checkout refuses
what cannot be paid; payments record whoever paid; a late payment meets the purchase rules again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from core import tables as t
from core.clock import FrozenClock
from core.errors import InvalidInput, NotOrderOwner, OrderNotFound, ReservationExpired
from core.messages import KeysDelivered, RefundDue
from core.models import STARS, Charge, OrderStatus, OwedPayment, PaymentStatus, UserIdentity
from core.services import Services
from tests.conftest import buyer, key_statuses, outbox_kinds, outbox_rows, pay, payment_row, query, stocked

# ---------------------------------------------------------------- confirmation


async def test_replayed_payment_changes_nothing_and_reports_the_first_outcome(shop: Services) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    first = await pay(shop, order)
    again = await pay(shop, order)
    assert again.replay and again.outcome is first.outcome
    assert await key_statuses(shop, pid) == {"available": 2, "sold": 1}
    assert await outbox_kinds(shop) == [KeysDelivered.KIND]
    assert await query(shop, select(func.count()).select_from(t.payments)) == [(1,)]


async def test_payment_with_a_different_amount_is_rejected_recorded_and_delivers_nothing(
    shop: Services,
) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    res = await pay(shop, order, amount=order.amount - 1)
    assert res.outcome is PaymentStatus.REJECTED and res.reason == "amount_mismatch" and res.must_refund
    assert (await shop.orders.get(order.ref)).status is OrderStatus.PENDING
    assert await key_statuses(shop, pid) == {"available": 2, "reserved": 1}
    assert await shop.refunds.refunds_due(order.ref) == [
        OwedPayment("telegram", "ch-1", order.amount - 1, STARS, payer_id=order.user_id)
    ]


async def test_payment_in_another_currency_is_rejected(shop: Services) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    res = await shop.payments.confirm_payment("telegram", "c", order.ref, order.amount, "USD")
    assert res.outcome is PaymentStatus.REJECTED


async def test_payment_for_an_unknown_order_is_rejected_and_recorded(shop: Services) -> None:
    res = await shop.payments.confirm_payment("telegram", "c", "NOSUCHORDER", 50, STARS)
    assert res.outcome is PaymentStatus.REJECTED and res.reason == "unknown_order" and res.order is None
    again = await shop.payments.confirm_payment("telegram", "c", "NOSUCHORDER", 50, STARS)
    assert again.replay


async def test_a_second_charge_for_a_delivered_order_is_marked_for_refund(shop: Services) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await pay(shop, order, "first")
    res = await pay(shop, order, "second")
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "already_paid"
    assert await key_statuses(shop, pid) == {"available": 2, "sold": 1}


async def test_an_unconfirmable_charge_becomes_refund_due_to_its_payer_once(shop: Services) -> None:
    uid = await buyer(shop)
    res = await shop.payments.refund_unconfirmable(
        Charge("telegram", "bad", "x" * 500, 7, STARS, payer_id=uid), reason="bad_payload"
    )
    assert res.outcome is PaymentStatus.REFUND_DUE and not res.replay
    again = await shop.payments.refund_unconfirmable(
        Charge("telegram", "bad", "x", 7, STARS, payer_id=uid), reason="bad_payload"
    )
    assert again.replay
    assert [(u, k, p["charge_id"]) for u, k, p in await outbox_rows(shop)] == [(uid, RefundDue.KIND, "bad")]


# ---------------------------------------------------------------- pre-checkout


async def test_pre_checkout_accepts_only_a_pending_unexpired_order_for_its_exact_amount(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    assert (await shop.payments.check_payable(order.ref, order.amount, STARS, payer=uid)).id == order.id
    with pytest.raises(InvalidInput):
        await shop.payments.check_payable(order.ref, order.amount + 1, STARS, payer=uid)
    with pytest.raises(OrderNotFound):
        await shop.payments.check_payable("FORGED", order.amount, STARS, payer=uid)
    clock.advance(minutes=15)
    with pytest.raises(ReservationExpired):
        await shop.payments.check_payable(order.ref, order.amount, STARS, payer=uid)


async def test_pre_checkout_refuses_a_payer_who_does_not_own_the_order(shop: Services) -> None:
    pid = await stocked(shop, 1)
    owner, other = await buyer(shop, "1"), await buyer(shop, "2")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    assert (await shop.payments.check_payable(o.ref, o.amount, STARS, payer=owner)).id == o.id
    with pytest.raises(NotOrderOwner):
        await shop.payments.check_payable(o.ref, o.amount, STARS, payer=other)


async def test_pre_checkout_knows_the_owner_by_channel_identity_without_a_user_lookup(shop: Services) -> None:
    pid = await stocked(shop, 1)
    owner = await buyer(shop, "1")
    await buyer(shop, "2")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    me = UserIdentity("telegram", "1", "en")
    assert (await shop.payments.check_payable(o.ref, o.amount, STARS, payer=me)).id == o.id
    for stranger in (
        UserIdentity("telegram", "2"),
        UserIdentity("telegram", "3"),
        UserIdentity("wechat", "1"),
    ):
        with pytest.raises(NotOrderOwner):
            await shop.payments.check_payable(o.ref, o.amount, STARS, payer=stranger)


# ---------------------------------------------------------------- payers


async def test_a_payment_records_who_paid(shop: Services) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS, payer_id=uid)
    assert (await payment_row(shop, "c1")).payer_id == uid


async def test_a_payment_from_someone_who_does_not_own_the_order_is_refunded_to_that_payer(
    shop: Services,
) -> None:
    pid = await stocked(shop, 1)
    owner, other = await buyer(shop, "1"), await buyer(shop, "2")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    res = await shop.payments.confirm_payment("telegram", "fwd", o.ref, o.amount, STARS, payer_id=other)
    assert res.must_refund and res.reason == "not_owner"
    assert (await shop.orders.get(o.ref)).status is OrderStatus.PENDING  # nothing delivered to anybody
    refund = RefundDue(
        provider="telegram",
        charge_id="fwd",
        order_ref=o.ref,
        reason="not_owner",
        amount=o.amount,
        currency=STARS,
    )
    assert await outbox_rows(shop) == [(other, RefundDue.KIND, refund.fields())]
    assert (await payment_row(shop, "fwd")).payer_id == other
    # The owner can still pay their own order.
    ok = await shop.payments.confirm_payment("telegram", "own", o.ref, o.amount, STARS, payer_id=owner)
    assert ok.outcome is PaymentStatus.ACCEPTED


async def test_a_second_charge_is_refunded_to_whoever_paid_it(shop: Services) -> None:
    pid = await stocked(shop, 2)
    owner = await buyer(shop, "1")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "a", o.ref, o.amount, STARS, payer_id=owner)
    await shop.payments.confirm_payment("telegram", "b", o.ref, o.amount, STARS, payer_id=owner)
    refunds = [(u, p["charge_id"]) for u, k, p in await outbox_rows(shop) if k == RefundDue.KIND]
    assert refunds == [(owner, "b")]


# ---------------------------------------------------------------- late payments keep the purchase rules


async def test_payment_for_a_pending_order_past_its_ttl_but_not_yet_swept_still_delivers(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 1)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    clock.advance(minutes=30)
    assert (await pay(shop, order)).outcome is PaymentStatus.ACCEPTED


async def test_late_payment_for_an_expired_order_reserves_again_when_stock_allows(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 2)
    order = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    clock.advance(minutes=20)
    await shop.orders.expire_due()
    assert await key_statuses(shop, pid) == {"available": 2}
    res = await pay(shop, order)
    assert res.outcome is PaymentStatus.ACCEPTED
    assert res.order is not None and res.order.status is OrderStatus.DELIVERED
    assert await key_statuses(shop, pid) == {"sold": 2}


async def test_late_payment_without_stock_marks_the_order_refund_due(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 2)
    late = await shop.checkout.checkout(await buyer(shop, "late"), pid, 2, STARS)
    clock.advance(minutes=20)
    await shop.orders.expire_due()
    quick = await shop.checkout.checkout(await buyer(shop, "quick"), pid, 1, STARS)
    await pay(shop, quick, "quick")
    res = await pay(shop, late, "late")
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "out_of_stock"
    assert res.order is not None and res.order.status is OrderStatus.REFUND_DUE
    assert await key_statuses(shop, pid) == {"available": 1, "sold": 1}  # the partial re-reservation undone
    assert RefundDue.KIND in await outbox_kinds(shop)


async def _expired(shop: Services, clock: FrozenClock, **kw: object) -> tuple[int, int, Any]:
    pid = await stocked(shop, 3, **kw)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    clock.advance(minutes=20)
    await shop.orders.expire_due()
    return pid, uid, o


async def test_a_late_payment_from_a_blocklisted_buyer_is_refunded(
    shop: Services, clock: FrozenClock
) -> None:
    _, uid, o = await _expired(shop, clock)
    await shop.users.set_blocklisted(uid, True)
    res = await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "blocklisted"
    assert res.order is not None and res.order.status is OrderStatus.REFUND_DUE


async def test_a_late_payment_for_a_product_taken_off_sale_is_refunded(
    shop: Services, clock: FrozenClock
) -> None:
    pid, uid, o = await _expired(shop, clock)
    await shop.catalog.update_product(pid, active=False)
    res = await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "product_unavailable"
    assert await shop.stock.available(pid) == 3


async def test_a_late_payment_over_the_buyers_limit_is_refunded(shop: Services, clock: FrozenClock) -> None:
    pid, uid, o = await _expired(shop, clock, user_limit=1, user_limit_hours=24)
    fresh = await shop.checkout.checkout(uid, pid, 1, STARS)  # uses the buyer's one unit for today
    await shop.payments.confirm_payment("telegram", "f", fresh.ref, fresh.amount, STARS, payer_id=uid)
    res = await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "user_limit"
    assert await shop.stock.available(pid) == 2


async def test_a_late_payment_over_the_daily_limit_is_refunded(shop: Services, clock: FrozenClock) -> None:
    pid, uid, o = await _expired(shop, clock, daily_limit=1)
    other = await buyer(shop, "other")
    fresh = await shop.checkout.checkout(other, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "f", fresh.ref, fresh.amount, STARS, payer_id=other)
    res = await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    assert res.outcome is PaymentStatus.REFUND_DUE and res.reason == "daily_limit"
