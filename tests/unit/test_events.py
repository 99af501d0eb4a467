"""The event seam: services emit domain events into the unit of work; the handlers registered for them run
in the same transaction, before COMMIT."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import InvalidOrderState
from core.events import (
    Event,
    OrderDelivered,
    OrderPaid,
    OrderRefunded,
    OrderRefundRequested,
    PaymentRejected,
    RefundOwed,
)
from core.messages import KeysDelivered
from core.models import STARS, DeliveryKind, KeyStatus, OrderStatus
from core.services import Services
from core.uow import UnitOfWork
from tests.conftest import buyer, in_read, in_write, payment_row, stocked


class Boom(Exception):
    pass


def record(shop: Services, *types: type[Event]) -> list[Event]:
    """Register a handler that remembers every event of ``types`` it sees (and the order's status, as the
    handler can read it in the transaction)."""
    seen: list[Event] = []

    def remember(uow: UnitOfWork, e: Event) -> None:
        seen.append(e)

    for typ in types:
        shop.ctx.events.register(typ, remember)
    return seen


async def outbox_size(shop: Services) -> int:
    return len(await in_read(shop, lambda uow: uow.repo.outbox.pending()))


async def test_an_event_handler_that_fails_rolls_back_the_whole_payment(shop: Services) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)

    def fail(uow: UnitOfWork, e: OrderDelivered) -> None:
        raise Boom()

    shop.ctx.events.register(OrderDelivered, fail)
    with pytest.raises(Boom):
        await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)

    assert (await shop.orders.get(o.ref)).status is OrderStatus.PENDING
    assert await payment_row(shop, "c1") is None  # no payment recorded
    counts = await in_read(shop, lambda uow: uow.repo.keys.count_by_status(pid))
    assert {(c.product_id, c.status): c.count for c in counts} == {
        (pid, KeyStatus.AVAILABLE.value): 1,
        (pid, KeyStatus.RESERVED.value): 1,  # still held for the order, not sold
    }
    assert await outbox_size(shop) == 0  # not even the reactions registered before it were kept


async def test_a_new_reaction_to_order_delivered_is_one_registered_function(shop: Services) -> None:
    pid = await stocked(shop, 2)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    statuses: list[OrderStatus] = []

    def commission(uow: UnitOfWork, e: OrderDelivered) -> None:
        # Runs in the delivery transaction: it sees the order delivered and writes beside it.
        now = uow.repo.orders.get(e.order.id)
        assert now is not None
        statuses.append(now.status)
        uow.repo.audit.add(e.at, "test", "commission_accrued", order_id=e.order.id)

    shop.ctx.events.register(OrderDelivered, commission)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)

    assert statuses == [OrderStatus.DELIVERED]
    actions = [e.action for e in await in_read(shop, lambda uow: uow.repo.audit.for_order(o.id))]
    assert "commission_accrued" in actions


async def test_delivery_emits_order_paid_then_order_delivered_with_the_keys_sold(shop: Services) -> None:
    pid = await stocked(shop, 3)
    seen = record(shop, OrderPaid, OrderDelivered)
    o = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)

    paid, delivered = seen
    assert isinstance(paid, OrderPaid) and isinstance(delivered, OrderDelivered)
    assert delivered.order.status is OrderStatus.DELIVERED and len(delivered.key_ids) == 2
    assert delivered.actor == "payment:telegram"


async def test_a_replayed_payment_emits_nothing(shop: Services) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)
    seen = record(shop, OrderPaid, OrderDelivered, RefundOwed, PaymentRejected)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)
    assert seen == []


async def test_a_manual_order_is_paid_first_and_delivered_when_an_admin_delivers_it(shop: Services) -> None:
    from tests.conftest import draft

    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    seen = record(shop, OrderPaid, OrderDelivered)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)
    assert [type(e) for e in seen] == [OrderPaid]
    await shop.orders.deliver_manually(o.ref, "your code: 1234", actor="admin:1")
    assert [type(e) for e in seen] == [OrderPaid, OrderDelivered]
    assert seen[1].actor == "admin:1"  # type: ignore[attr-defined]


async def test_a_rejected_charge_emits_payment_rejected_with_the_payer(shop: Services) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    seen = record(shop, PaymentRejected, RefundOwed)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount + 1, STARS)
    (e,) = seen
    assert isinstance(e, PaymentRejected)
    assert (e.reason, e.charge.payer_id, e.charge.charge_id) == ("amount_mismatch", uid, "c1")


async def test_an_admin_refund_emits_the_request_one_refund_owed_per_charge_then_refunded(
    shop: Services,
) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)
    seen = record(shop, OrderRefundRequested, RefundOwed, OrderRefunded)
    await shop.refunds.request_refund(o.ref, actor="admin:1", reason="admin")
    assert [type(e) for e in seen] == [OrderRefundRequested, RefundOwed]
    assert isinstance(seen[0], OrderRefundRequested) and seen[0].voided is False
    await shop.refunds.complete_refund("telegram", "c1", actor="telegram")
    assert [type(e) for e in seen][-1] is OrderRefunded


async def test_events_of_a_transaction_that_is_not_committed_run_no_handler(shop: Services) -> None:
    seen = record(shop, OrderRefunded)
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)

    def emit_and_leave(uow: UnitOfWork) -> None:
        uow.emit(OrderRefunded(at=o.created_at, actor="test", order=o))  # and return without commit()

    await shop.ctx.write(emit_and_leave)
    assert seen == []


async def test_handlers_run_in_the_order_events_were_emitted_and_may_emit_more(shop: Services) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    order: list[str] = []

    def on_refunded(uow: UnitOfWork, e: OrderRefunded) -> None:
        order.append(f"refunded:{e.actor}")
        if e.actor == "first":
            uow.emit(OrderRefunded(at=e.at, actor="chained", order=e.order))

    shop.ctx.events.register(OrderRefunded, on_refunded)

    def emit_two(uow: UnitOfWork) -> None:
        uow.emit(OrderRefunded(at=o.created_at, actor="first", order=o))
        uow.emit(OrderRefunded(at=o.created_at, actor="second", order=o))

    await in_write(shop, emit_two)
    assert order == ["refunded:first", "refunded:second", "refunded:chained"]


async def test_the_shops_reactions_write_the_buyers_message_in_the_delivery_transaction(
    shop: Services,
) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop, "77"), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)
    (m,) = await shop.outbox.claim("telegram")
    assert m.message == KeysDelivered(o.ref)


async def test_a_failing_reaction_to_an_admin_refund_leaves_the_order_delivered(shop: Services) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS)

    def fail(uow: UnitOfWork, e: OrderRefundRequested) -> None:
        raise InvalidOrderState(status="clawback failed")

    shop.ctx.events.register(OrderRefundRequested, fail)
    with pytest.raises(InvalidOrderState):
        await shop.refunds.request_refund(o.ref, actor="admin:1")
    assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED
    assert (await payment_row(shop, "c1")).status == "accepted"


async def test_an_event_emitted_after_commit_is_refused_not_silently_dropped(shop: Services) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)

    def commit_then_emit(uow: UnitOfWork) -> None:
        uow.commit()
        with pytest.raises(RuntimeError):
            uow.emit(OrderRefunded(at=o.created_at, actor="late", order=o))

    await shop.ctx.write(commit_then_emit)


async def test_a_transaction_whose_event_handler_failed_cannot_be_committed_by_retrying(
    shop: Services,
) -> None:
    pid = await stocked(shop, 1)
    o = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    ran: list[str] = []

    def fail(uow: UnitOfWork, e: OrderRefunded) -> None:
        raise Boom()

    def after(uow: UnitOfWork, e: OrderRefunded) -> None:
        ran.append("after")
        uow.repo.audit.add(e.at, "test", "should_not_be_kept", order_id=e.order.id)

    shop.ctx.events.register(OrderRefunded, fail)
    shop.ctx.events.register(OrderRefunded, after)

    def swallow_and_retry(uow: UnitOfWork) -> None:
        uow.emit(OrderRefunded(at=o.created_at, actor="test", order=o))
        with pytest.raises(Boom):
            uow.commit()
        with pytest.raises(RuntimeError):
            uow.commit()  # a caller that swallowed the failure and tried again

    await shop.ctx.write(swallow_and_retry)
    assert ran == []
    actions = [e.action for e in await in_read(shop, lambda uow: uow.repo.audit.for_order(o.id))]
    assert "should_not_be_kept" not in actions


async def test_a_unit_of_work_refuses_its_repositories_once_it_has_committed(shop: Services) -> None:
    """A statement after COMMIT would run outside the transaction on SQLite and be rolled back on
    PostgreSQL: the unit of work refuses it on both."""

    def late_write(uow: UnitOfWork) -> None:
        uow.commit()
        uow.repo.cursors.advance("late", 1, datetime.now(UTC))

    with pytest.raises(RuntimeError, match="committed"):
        await shop.ctx.write(late_write)
    assert await shop.cursors.get("late") == 0
