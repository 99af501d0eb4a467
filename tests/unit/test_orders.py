"""The purchase rules, one test per rule, on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from core import tables as t
from core.clock import FrozenClock
from core.errors import (
    CurrencyNotAccepted,
    DailyLimitReached,
    IntegrityViolation,
    InvalidInput,
    InvalidOrderState,
    LimitExceeded,
    OrderNotFound,
    OutOfStock,
    PhoneRequired,
    ProductUnavailable,
    QuantityOutOfRange,
    ReservationExpired,
    TooManyPendingOrders,
    UserBlocklisted,
)
from core.messages import AwaitingManual, KeysDelivered, RefundDue
from core.models import (
    STARS,
    DeliveryKind,
    KeyStatus,
    OrderStatus,
    OwedPayment,
    PaymentStatus,
    check_transition,
)
from core.services import Services
from tests.conftest import buyer, draft, stocked


async def key_statuses(shop: Services, product_id: int) -> dict[str, int]:
    async with shop.ctx.uow(write=False) as uow:
        rows = await uow.repo.keys.count_by_status(product_id)
    return {c.status: c.count for c in rows}


async def outbox_kinds(shop: Services) -> list[str]:
    async with shop.ctx.uow(write=False) as uow:
        return [r.kind for r in await uow.repo.outbox.pending()]


async def pay(shop: Services, order, charge: str = "ch-1", amount: int | None = None):  # type: ignore[no-untyped-def]
    return await shop.payments.confirm_payment(
        "telegram", charge, order.ref, order.amount if amount is None else amount, order.currency
    )


# ---------------------------------------------------------------- checkout


async def test_checkout_reserves_exactly_the_quantity_ordered(shop: Services) -> None:
    pid = await stocked(shop, 5)
    order = await shop.checkout.checkout(await buyer(shop), pid, 3, STARS)
    assert order.status is OrderStatus.PENDING
    assert order.amount == 150 and order.currency == STARS
    assert await key_statuses(shop, pid) == {"available": 2, "reserved": 3}


async def test_checkout_in_shop_currency_charges_the_minor_unit_price(shop: Services) -> None:
    pid = await stocked(shop, 2)
    order = await shop.checkout.checkout(await buyer(shop), pid, 2, "USD")
    assert (order.amount, order.currency) == (1980, "USD")


async def test_too_little_stock_reserves_nothing_and_creates_no_order(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    with pytest.raises(OutOfStock):
        await shop.checkout.checkout(uid, pid, 3, STARS)
    assert await key_statuses(shop, pid) == {"available": 2}
    assert await shop.orders.for_user(uid) == []


@pytest.mark.parametrize("qty", [0, -1, 6, 10**9])
async def test_quantity_outside_the_products_limits_is_refused(shop: Services, qty: int) -> None:
    pid = await stocked(shop, 10, min_qty=1, max_qty=5)
    with pytest.raises(QuantityOutOfRange):
        await shop.checkout.checkout(await buyer(shop), pid, qty, STARS)
    assert await key_statuses(shop, pid) == {"available": 10}


async def test_quantity_that_is_not_a_whole_number_is_refused(shop: Services) -> None:
    pid = await stocked(shop, 3)
    with pytest.raises(InvalidInput):
        await shop.checkout.checkout(await buyer(shop), pid, 1.5, STARS)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await shop.checkout.checkout(await buyer(shop), pid, True, STARS)


async def test_a_currency_the_product_has_no_price_in_is_refused(shop: Services) -> None:
    pid = await stocked(shop, 3, price_stars=0)
    uid = await buyer(shop)
    with pytest.raises(CurrencyNotAccepted):
        await shop.checkout.checkout(uid, pid, 1, STARS)
    with pytest.raises(CurrencyNotAccepted):
        await shop.checkout.checkout(uid, pid, 1, "EUR")


async def test_inactive_product_cannot_be_bought(shop: Services) -> None:
    pid = await stocked(shop, 3)
    await shop.catalog.update_product(pid, active=False)
    with pytest.raises(ProductUnavailable):
        await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)


async def test_blocklisted_user_cannot_buy(shop: Services) -> None:
    pid = await stocked(shop, 3)
    with pytest.raises(UserBlocklisted):
        await shop.checkout.checkout(await buyer(shop, blocklisted=True), pid, 1, STARS)


async def test_product_requiring_a_phone_refuses_buyers_without_one(shop: Services) -> None:
    pid = await stocked(shop, 3, requires_phone=True)
    with pytest.raises(PhoneRequired):
        await shop.checkout.checkout(await buyer(shop, "1"), pid, 1, STARS)
    order = await shop.checkout.checkout(await buyer(shop, "2", phone="+86 138 0000 0000"), pid, 1, STARS)
    assert order.status is OrderStatus.PENDING


async def test_per_user_limit_counts_pending_and_paid_orders_in_the_rolling_window(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 10, user_limit=2, user_limit_hours=24)
    uid = await buyer(shop)
    first = await shop.checkout.checkout(uid, pid, 1, STARS)
    await pay(shop, first)
    await shop.checkout.checkout(uid, pid, 1, STARS)  # pending, still counts
    with pytest.raises(LimitExceeded) as e:
        await shop.checkout.checkout(uid, pid, 2, STARS)  # (the same 1 again would be the pending order)
    assert e.value.params["remaining"] == 0
    # another buyer is not affected
    await shop.checkout.checkout(await buyer(shop, "other"), pid, 2, STARS)
    clock.advance(hours=24, seconds=1)
    await shop.checkout.checkout(uid, pid, 2, STARS)


async def test_expired_and_cancelled_orders_do_not_count_against_the_user_limit(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 10, user_limit=1, user_limit_hours=24)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.orders.cancel(o.ref, user_id=uid, actor="user")
    await shop.checkout.checkout(uid, pid, 1, STARS)
    clock.advance(minutes=16)
    assert await shop.orders.expire_due() == 1
    await shop.checkout.checkout(uid, pid, 1, STARS)


async def test_daily_limit_per_product_resets_at_local_midnight(shop: Services, clock: FrozenClock) -> None:
    from zoneinfo import ZoneInfo

    from core.context import Context, ShopConfig

    clock._now = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    cn = Services(
        Context(shop.ctx.db, shop.ctx.vault, ShopConfig("CNY", timezone=ZoneInfo("Asia/Shanghai")), clock)
    )
    pid = await stocked(cn, 10, daily_limit=2)
    await cn.checkout.checkout(await buyer(cn, "a"), pid, 2, STARS)
    with pytest.raises(DailyLimitReached):
        await cn.checkout.checkout(await buyer(cn, "b"), pid, 1, STARS)
    clock.advance(hours=1, seconds=1)  # 00:00:01 next day in Shanghai, still 1 March in UTC
    await cn.checkout.checkout(await buyer(cn, "b"), pid, 1, STARS)


# ---------------------------------------------------------------- payment and delivery


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


async def test_replayed_payment_changes_nothing_and_reports_the_first_outcome(shop: Services) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    first = await pay(shop, order)
    again = await pay(shop, order)
    assert again.replay and again.outcome is first.outcome
    assert await key_statuses(shop, pid) == {"available": 2, "sold": 1}
    assert await outbox_kinds(shop) == [KeysDelivered.KIND]
    async with shop.ctx.uow(write=False) as uow:
        n = (await uow.repo.conn.execute(select(func.count()).select_from(t.payments))).scalar_one()
    assert n == 1


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


async def test_payment_for_a_pending_order_past_its_ttl_but_not_yet_swept_still_delivers(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 1)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    clock.advance(minutes=30)
    assert (await pay(shop, order)).outcome is PaymentStatus.ACCEPTED


async def test_delivery_short_of_keys_rolls_back_the_whole_payment(shop: Services) -> None:
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    async with shop.ctx.uow() as uow:  # simulate corruption: one reserved key slips out of the order
        await uow.repo.conn.execute(
            update(t.keys).where(t.keys.c.order_id == order.id, t.keys.c.id == 1).values(status="available")
        )
        await uow.commit()
    with pytest.raises(IntegrityViolation):
        await pay(shop, order)
    assert (await shop.orders.get(order.ref)).status is OrderStatus.PENDING
    assert await outbox_kinds(shop) == []
    async with shop.ctx.uow(write=False) as uow:
        assert await uow.repo.payments.get("telegram", "ch-1") is None


# ---------------------------------------------------------------- pre-checkout


async def test_pre_checkout_accepts_only_a_pending_unexpired_order_for_its_exact_amount(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    assert (await shop.payments.check_payable(order.ref, order.amount, STARS, payer_id=uid)).id == order.id
    with pytest.raises(InvalidInput):
        await shop.payments.check_payable(order.ref, order.amount + 1, STARS, payer_id=uid)
    with pytest.raises(OrderNotFound):
        await shop.payments.check_payable("FORGED", order.amount, STARS, payer_id=uid)
    clock.advance(minutes=15)
    with pytest.raises(ReservationExpired):
        await shop.payments.check_payable(order.ref, order.amount, STARS, payer_id=uid)


# ---------------------------------------------------------------- expiry, cancellation


async def test_expiry_returns_reserved_keys_to_stock(shop: Services, clock: FrozenClock) -> None:
    pid = await stocked(shop, 3)
    o = await shop.checkout.checkout(await buyer(shop), pid, 3, STARS)
    clock.advance(minutes=14)
    assert await shop.orders.expire_due() == 0
    clock.advance(minutes=1)
    assert await shop.orders.expire_due() == 1
    assert (await shop.orders.get(o.ref)).status is OrderStatus.EXPIRED
    assert await key_statuses(shop, pid) == {"available": 3}


async def test_only_the_buyer_can_cancel_their_pending_order(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 2, STARS)
    with pytest.raises(OrderNotFound):
        await shop.orders.cancel(o.ref, user_id=await buyer(shop, "stranger"), actor="x")
    await shop.orders.cancel(o.ref, user_id=uid, actor="user")
    assert await key_statuses(shop, pid) == {"available": 2}
    with pytest.raises(InvalidOrderState):
        await shop.orders.cancel(o.ref, user_id=uid, actor="user")


# ---------------------------------------------------------------- refunds


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


async def test_a_pending_order_cannot_be_refunded(shop: Services) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    with pytest.raises(InvalidOrderState):
        await shop.refunds.request_refund(o.ref, actor="admin:1")


# ---------------------------------------------------------------- revealing


async def test_keys_are_revealed_only_to_their_buyer_and_every_reveal_is_audited(shop: Services) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    with pytest.raises(InvalidOrderState):
        await shop.orders.reveal(o.ref, user_id=uid, actor="user", reason="early")
    await pay(shop, o)
    with pytest.raises(OrderNotFound):
        await shop.orders.reveal(o.ref, user_id=await buyer(shop, "thief"), actor="thief", reason="x")
    await shop.orders.reveal(o.ref, user_id=uid, actor="user", reason="delivery")
    await shop.orders.reveal(o.ref, user_id=None, actor="admin:7", reason="support")
    async with shop.ctx.uow(write=False) as uow:
        audit = await uow.repo.audit.for_order(o.id)
    reveals = [e.detail for e in audit if e.action == "keys_revealed"]
    assert [r["reason"] for r in reveals] == ["delivery", "support"]


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


# ---------------------------------------------------------------- references and the state machine


async def test_order_references_are_unguessable_and_distinct(shop: Services) -> None:
    pid = await stocked(shop, 50)
    refs = {(await shop.checkout.checkout(await buyer(shop, f"b{i}"), pid, 1, STARS)).ref for i in range(50)}
    assert len(refs) == 50
    assert all(len(r) == 16 and r.isalnum() and r.isupper() for r in refs)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (OrderStatus.DELIVERED, OrderStatus.PENDING),
        (OrderStatus.REFUNDED, OrderStatus.DELIVERED),
        (OrderStatus.PENDING, OrderStatus.REFUNDED),
        (OrderStatus.EXPIRED, OrderStatus.CANCELLED),
    ],
)
def test_the_order_state_machine_forbids_backward_and_skipping_moves(
    old: OrderStatus, new: OrderStatus
) -> None:
    with pytest.raises(InvalidOrderState):
        check_transition(old, new)


def test_key_status_values_fit_their_column() -> None:
    assert max(len(s.value) for s in KeyStatus) <= t.keys.c.status.type.length  # type: ignore[attr-defined]


async def test_buying_the_same_again_while_unpaid_returns_the_same_order_and_holds_no_more_stock(
    shop: Services, clock: FrozenClock
) -> None:
    pid = await stocked(shop, 5)
    uid = await buyer(shop)
    first = await shop.checkout.checkout(uid, pid, 2, STARS)
    again = await shop.checkout.checkout(uid, pid, 2, STARS)  # a double tap, or Buy after losing the invoice
    assert again.ref == first.ref and await shop.stock.available(pid) == 3
    other_qty = await shop.checkout.checkout(uid, pid, 1, STARS)  # a different purchase is a new order
    assert other_qty.ref != first.ref and await shop.stock.available(pid) == 2
    clock.advance(minutes=11)  # less than a third of the reservation left: a fresh order, not a dying one
    fresh = await shop.checkout.checkout(uid, pid, 2, STARS)
    assert fresh.ref != first.ref


async def test_a_buyer_holds_at_most_three_unpaid_orders_at_a_time(shop: Services) -> None:
    pids = [await stocked(shop, 5, name=f"P{i}") for i in range(4)]
    uid = await buyer(shop)
    for pid in pids[:3]:
        await shop.checkout.checkout(uid, pid, 1, STARS)
    with pytest.raises(TooManyPendingOrders) as e:
        await shop.checkout.checkout(uid, pids[3], 1, STARS)
    assert e.value.params["count"] == 3 and await shop.stock.available(pids[3]) == 5
    await shop.checkout.checkout(await buyer(shop, "other"), pids[3], 1, STARS)  # others are not affected


async def test_a_forged_quantity_whose_total_one_invoice_cannot_take_reserves_nothing(shop: Services) -> None:
    pid = await stocked(shop, 10, price_stars=4000, max_qty=5)  # 3 x 4000 Stars > one invoice's 10,000
    uid = await buyer(shop)
    with pytest.raises(QuantityOutOfRange) as e:
        await shop.checkout.checkout(uid, pid, 3, STARS)
    assert e.value.params["max"] == 2 and await shop.stock.available(pid) == 10
    await shop.checkout.checkout(uid, pid, 2, STARS)
