"""Every charge ends delivered or refunded to whoever paid: payers, durable notices, late payments."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core import tables as t
from core.clock import FrozenClock
from core.errors import NotOrderOwner
from core.messages import KeysDelivered, RefundDue
from core.models import STARS, DeliveryKind, OrderStatus, PaymentStatus
from core.repositories import PaymentNoticeRepo, PaymentRepo, UserRepo
from core.services import Services
from tests.conftest import buyer, draft, stocked


def locked() -> OperationalError:
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


async def outbox_rows(shop: Services) -> list[tuple[int, str, dict[str, Any]]]:
    async with shop.ctx.uow(write=False) as uow:
        return [(r.user_id, r.kind, r.payload) for r in await uow.repo.outbox.pending()]


async def payment_row(shop: Services, charge: str) -> Any:
    async with shop.ctx.uow(write=False) as uow:
        return await uow.repo.payments.get("telegram", charge)


async def notice(shop: Services, order: Any, charge: str, payer: int, amount: int | None = None) -> int:
    return await shop.payments.record_notice(
        "telegram",
        charge,
        payer_id=payer,
        order_ref=order.ref,
        amount=order.amount if amount is None else amount,
        currency=order.currency,
        raw={"telegram_payment_charge_id": charge},
    )


# ---------------------------------------------------------------- payers


async def test_a_payment_records_who_paid(shop: Services) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c1", o.ref, o.amount, STARS, payer_id=uid)
    assert (await payment_row(shop, "c1")).payer_id == uid


async def test_pre_checkout_refuses_a_payer_who_does_not_own_the_order(shop: Services) -> None:
    pid = await stocked(shop, 1)
    owner, other = await buyer(shop, "1"), await buyer(shop, "2")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    assert (await shop.payments.check_payable(o.ref, o.amount, STARS, payer_id=owner)).id == o.id
    with pytest.raises(NotOrderOwner):
        await shop.payments.check_payable(o.ref, o.amount, STARS, payer_id=other)


async def test_a_payment_from_someone_who_does_not_own_the_order_is_refunded_to_that_payer(
    shop: Services,
) -> None:
    pid = await stocked(shop, 1)
    owner, other = await buyer(shop, "1"), await buyer(shop, "2")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    res = await shop.payments.confirm_payment("telegram", "fwd", o.ref, o.amount, STARS, payer_id=other)
    assert res.must_refund and res.reason == "not_owner"
    assert (await shop.orders.get(o.ref)).status is OrderStatus.PENDING  # nothing delivered to anybody
    fields = {**(await outbox_rows(shop))[0][2], "charge_id": "fwd", "reason": "not_owner"}
    assert await outbox_rows(shop) == [(other, RefundDue.KIND, fields)]
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


async def test_an_admin_refund_goes_to_whoever_paid_and_legacy_payments_to_the_owner(
    shop: Services,
) -> None:
    pid = await stocked(shop, 2)
    owner = await buyer(shop, "1")
    o = await shop.checkout.checkout(owner, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "a", o.ref, o.amount, STARS, payer_id=owner)
    async with shop.ctx.uow() as uow:  # a payment recorded before payers were (payer_id NULL)
        await uow.repo.conn.execute(t.payments.update().values(payer_id=None))
        await uow.commit()
    await shop.refunds.request_refund(o.ref, actor="admin:1")
    refunds = [(u, p["charge_id"]) for u, k, p in await outbox_rows(shop) if k == RefundDue.KIND]
    assert refunds == [(owner, "a")]


# ---------------------------------------------------------------- durable notices


async def test_a_payment_notice_is_recorded_once_per_charge(shop: Services) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    first = await notice(shop, o, "c1", uid)
    assert await notice(shop, o, "c1", uid) == first
    async with shop.ctx.uow(write=False) as uow:
        rows = (await uow.repo.conn.execute(select(t.payment_notices))).all()
    assert [(r.charge_id, r.status, r.payer_id, r.raw) for r in rows] == [
        ("c1", "pending", uid, {"telegram_payment_charge_id": "c1"})
    ]


async def test_recording_a_notice_retries_a_briefly_locked_database(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    real = PaymentNoticeRepo.add_once
    fails = [locked(), locked()]

    async def flaky(self: PaymentNoticeRepo, **values: Any) -> int | None:
        if fails:
            raise fails.pop()
        return await real(self, **values)

    monkeypatch.setattr(PaymentNoticeRepo, "add_once", flaky)
    assert await notice(shop, o, "c1", uid) > 0


async def test_the_payer_behind_a_payment_is_found_even_while_the_database_is_briefly_locked(
    shop: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every update needs its user before its handler runs; for a payment that is the payer, and a lookup
    that failed once would lose the update (and the charge) before the notice could be written."""
    real = UserRepo.get_by_external
    fails = [locked(), locked()]

    async def flaky(self: UserRepo, channel: str, external_id: str) -> Any:
        if fails:
            raise fails.pop()
        return await real(self, channel, external_id)

    monkeypatch.setattr(UserRepo, "get_by_external", flaky)
    user = await shop.users.ensure("telegram", "777")
    assert user.external_id == "777" and not fails


async def test_a_notice_whose_processing_fails_stays_pending_and_the_retry_job_delivers_it(
    shop: Services, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await stocked(shop, 1)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    nid = await notice(shop, o, "c1", uid)
    real = PaymentRepo.add_once
    fails = [locked()]

    async def flaky(self: PaymentRepo, **values: Any) -> bool:
        if fails:
            raise fails.pop()
        return await real(self, **values)

    monkeypatch.setattr(PaymentRepo, "add_once", flaky)
    first = await shop.payments.process_notice(nid)
    assert not first.ok and first.attempts == 1 and first.transient
    async with shop.ctx.uow(write=False) as uow:
        row = (await uow.repo.conn.execute(select(t.payment_notices))).one()
    assert row.status == "pending" and "locked" in row.last_error and row.next_attempt_at > clock.now()
    assert await shop.payments.process_due_notices() == []  # not due yet: backing off
    clock.advance(minutes=5)
    (again,) = await shop.payments.process_due_notices()
    assert again.ok and again.result is not None and again.result.outcome is PaymentStatus.ACCEPTED
    assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED
    async with shop.ctx.uow(write=False) as uow:
        assert (await uow.repo.conn.execute(select(t.payment_notices.c.status))).scalar_one() == "done"
    clock.advance(minutes=5)
    assert await shop.payments.process_due_notices() == []


async def test_a_replayed_notice_changes_nothing(shop: Services) -> None:
    pid = await stocked(shop, 2)
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    nid = await notice(shop, o, "c1", uid)
    assert (await shop.payments.process_notice(nid)).ok
    before = await outbox_rows(shop)
    again = await shop.payments.process_notice(await notice(shop, o, "c1", uid))
    assert again.ok and again.result is not None and again.result.replay
    assert await outbox_rows(shop) == before == [(uid, KeysDelivered.KIND, {"order_ref": o.ref})]


async def test_an_unconfirmable_charge_becomes_refund_due_to_its_payer_once(shop: Services) -> None:
    uid = await buyer(shop)
    res = await shop.payments.refund_unconfirmable(
        "telegram", "bad", payer_id=uid, order_ref="x" * 500, amount=7, currency=STARS, reason="bad_payload"
    )
    assert res.outcome is PaymentStatus.REFUND_DUE and not res.replay
    again = await shop.payments.refund_unconfirmable(
        "telegram", "bad", payer_id=uid, order_ref="x", amount=7, currency=STARS, reason="bad_payload"
    )
    assert again.replay
    assert [(u, k, p["charge_id"]) for u, k, p in await outbox_rows(shop)] == [(uid, RefundDue.KIND, "bad")]


# ---------------------------------------------------------------- late payments keep the purchase rules


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


# ---------------------------------------------------------------- manual content on refund


async def test_refunding_an_unseen_manual_delivery_voids_the_content_instead_of_stocking_it(
    shop: Services,
) -> None:
    pid = await shop.catalog.add_product(draft(delivery_kind=DeliveryKind.MANUAL))
    uid = await buyer(shop)
    o = await shop.checkout.checkout(uid, pid, 1, STARS)
    await shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS, payer_id=uid)
    await shop.orders.deliver_manually(o.ref, "account: a@b.c / pass: x", actor="admin:1")
    await shop.refunds.request_refund(o.ref, actor="admin:1")
    async with shop.ctx.uow(write=False) as uow:
        statuses = {c.status for c in await uow.repo.keys.count_by_status(pid)}
    assert statuses == {"void"}
    assert await shop.stock.available(pid) == 0
