"""The back office's orders and buyers on both databases: "mark paid" through the one payment confirmation
(idempotent, and never a second charge kept when the buyer pays at the same moment), an operator's scope,
what needs an admin, bans."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from core import tables as t
from core.context import UnitOfWork
from core.errors import (
    BuyerNotFound,
    InvalidInput,
    InvalidOrderState,
    ManualAmountMismatch,
    NotBannable,
    NotPermitted,
    OrderNotFound,
    UserBlocklisted,
    UsernameNotKnown,
)
from core.models import STARS, DeliveryKind, OrderStatus, PaymentStatus
from core.roles import Grant, Role
from core.services import Services
from core.services.order_desk import OrderDetail, OrderList, mask_key
from tests.conftest import buyer, pay, stocked

OWNER = Grant(Role.OWNER)
ADMIN = Grant(Role.ADMIN)


def operator_of(*products: int) -> Grant:
    return Grant(Role.OPERATOR, frozenset(products))


async def _audit(shop: Services, action: str) -> list[dict[str, object]]:
    def read(uow: UnitOfWork) -> list[dict[str, object]]:
        a = t.audit_log
        return [r[0] for r in uow.repo.conn.execute(select(a.c.detail).where(a.c.action == action)).all()]

    return await shop.ctx.read(read)


async def _payments(shop: Services, order_id: int) -> list[tuple[str, str]]:
    rows = await shop.ctx.read(lambda uow: uow.repo.payments.for_order(order_id))
    return sorted((p.provider, str(p.status)) for p in rows)


def test_a_long_key_shows_its_ends_and_a_short_key_nothing() -> None:
    assert mask_key("ABCD-EFGH-IJKL-WXYZ") == "ABCD…WXYZ"
    assert mask_key("SHORTKEY123") == "••••"
    assert mask_key("") == "••••"


async def test_mark_paid_delivers_once_and_a_replay_changes_nothing(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, "USD")
    first = await shop.order_desk.mark_paid(
        order.ref, order.amount, "bank transfer 42", grant=ADMIN, actor="a"
    )
    again = await shop.order_desk.mark_paid(
        order.ref, order.amount, "bank transfer 42", grant=ADMIN, actor="a"
    )
    assert first.outcome is PaymentStatus.ACCEPTED and not first.replay
    assert again.replay and again.outcome is PaymentStatus.ACCEPTED
    assert first.order is not None and first.order.status is OrderStatus.DELIVERED
    assert await _payments(shop, order.id) == [("manual", "accepted")]
    marked = await _audit(shop, "payment_marked_paid")
    assert len(marked) == 1 and marked[0]["note"] == "bank transfer 42"


async def test_mark_paid_needs_the_orders_exact_amount_and_a_note_and_records_nothing_otherwise(
    any_shop: Services,
) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, "USD")
    with pytest.raises(ManualAmountMismatch):
        await shop.order_desk.mark_paid(order.ref, order.amount - 1, "cash", grant=ADMIN, actor="a")
    for note in ("", "   ", "x" * 201):
        with pytest.raises(InvalidInput):
            await shop.order_desk.mark_paid(order.ref, order.amount, note, grant=ADMIN, actor="a")
    with pytest.raises(InvalidInput):
        await shop.order_desk.mark_paid(order.ref, -5, "cash", grant=ADMIN, actor="a")
    assert await _payments(shop, order.id) == []
    assert (await shop.orders.get(order.ref)).status is OrderStatus.PENDING


@pytest.mark.parametrize("manual_first", [True, False])
async def test_mark_paid_racing_the_buyers_payment_keeps_one_charge_and_owes_the_other_back(
    any_shop: Services, manual_first: bool
) -> None:
    shop = any_shop
    pid = await stocked(shop, 10)
    orders = [await shop.checkout.checkout(await buyer(shop, f"r{i}"), pid, 1, "USD") for i in range(6)]

    async def race(i: int) -> None:
        o = orders[i]
        manual = shop.order_desk.mark_paid(o.ref, o.amount, "cash", grant=ADMIN, actor="a")
        stars = pay(shop, o, charge=f"tg-{i}")
        await asyncio.gather(*((manual, stars) if manual_first else (stars, manual)))

    await asyncio.gather(*(race(i) for i in range(len(orders))))
    for o in orders:
        statuses = [s for _, s in await _payments(shop, o.id)]
        assert sorted(statuses) == ["accepted", "refund_due"], statuses
        assert (await shop.orders.get(o.ref)).status is OrderStatus.DELIVERED
    sold = await shop.ctx.read(
        lambda uow: uow.repo.conn.execute(
            select(func.count()).where(t.keys.c.product_id == pid, t.keys.c.status == "sold")
        ).scalar_one()
    )
    assert sold == len(orders)


async def test_an_operator_out_of_scope_finds_no_such_order_and_touches_nothing(any_shop: Services) -> None:
    shop = any_shop
    theirs, other = await stocked(shop, 2), await stocked(shop, 2, name="Other")
    uid = await buyer(shop)
    order = await shop.checkout.checkout(uid, other, 1, STARS)
    op = operator_of(theirs)
    desk = shop.order_desk
    for attempt in (
        desk.detail(order.ref, grant=op),
        desk.cancel(order.ref, grant=op, actor="op"),
        desk.refund(order.ref, grant=op, actor="op"),
        desk.resend(order.ref, grant=op, actor="op"),
        desk.deliver(order.ref, "item", grant=op, actor="op"),
        desk.mark_paid(order.ref, order.amount, "cash", grant=op, actor="op"),
    ):
        with pytest.raises(OrderNotFound):
            await attempt
    found = await desk.search("1001", channel="telegram", grant=op)
    assert isinstance(found, OrderList) and found.lines == []
    assert (await desk.pending(grant=op)).lines == []
    assert (await shop.orders.get(order.ref)).status is OrderStatus.PENDING
    # within scope, an operator handles orders but never money
    mine = await shop.checkout.checkout(uid, theirs, 1, STARS)
    with pytest.raises(NotPermitted):
        await desk.mark_paid(mine.ref, mine.amount, "cash", grant=op, actor="op")
    await pay(shop, mine)
    with pytest.raises(NotPermitted):
        await desk.refund(mine.ref, grant=op, actor="op")
    detail = await desk.detail(mine.ref, grant=op)
    assert detail.keys == ["••••"]


async def test_an_order_in_full_has_its_payments_trail_and_masked_keys(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 2, STARS)
    await pay(shop, order)
    found = await shop.order_desk.search(order.ref.lower(), channel="telegram", grant=OWNER)
    assert isinstance(found, OrderDetail)
    assert found.keys == ["••••", "••••"]  # KEY-0000: under 12 characters
    assert [(p.provider, p.charge_id) for p in found.payments] == [("telegram", "ch-1")]
    assert [e.action for e in found.trail] == ["order_created", "payment_confirmed", "keys_delivered"]
    by_buyer = await shop.order_desk.search("1001", channel="telegram", grant=OWNER)
    assert isinstance(by_buyer, OrderList) and [ln.order.ref for ln in by_buyer.lines] == [order.ref]
    imports = await shop.ctx.read(
        lambda uow: uow.repo.conn.execute(select(func.max(t.stock_imports.c.id))).scalar_one()
    )
    by_batch = await shop.order_desk.search(f"i:{imports}", channel="telegram", grant=OWNER)
    assert isinstance(by_batch, OrderList) and [ln.order.ref for ln in by_batch.lines] == [order.ref]
    with pytest.raises(UsernameNotKnown):
        await shop.order_desk.search("@ann", channel="telegram", grant=OWNER)
    ann = await shop.users.find("telegram", "1001")
    assert ann is not None
    await shop.users.follow_username(ann.id, "Ann")
    by_name = await shop.order_desk.search("@ANN", channel="telegram", grant=OWNER)
    assert isinstance(by_name, OrderList) and [ln.order.ref for ln in by_name.lines] == [order.ref]
    with pytest.raises(BuyerNotFound):
        await shop.order_desk.search("424242", channel="telegram", grant=OWNER)
    with pytest.raises(InvalidInput):
        await shop.order_desk.search("<b>x</b>", channel="telegram", grant=OWNER)


async def test_pending_lists_paid_manual_orders_and_refunds_not_yet_done(any_shop: Services) -> None:
    shop = any_shop
    manual = await stocked(shop, 0, name="Manual", delivery_kind=DeliveryKind.MANUAL)
    keys = await stocked(shop, 3)
    uid = await buyer(shop)
    waiting = await shop.checkout.checkout(uid, manual, 1, STARS)
    await pay(shop, waiting, charge="m1")
    refunded = await shop.checkout.checkout(uid, keys, 1, STARS)
    await pay(shop, refunded, charge="k1")
    await shop.order_desk.refund(refunded.ref, grant=ADMIN, actor="a")
    quiet = await shop.checkout.checkout(uid, keys, 1, STARS)
    await pay(shop, quiet, charge="k2")
    listed = await shop.order_desk.pending(grant=OWNER)
    assert {ln.order.ref for ln in listed.lines} == {waiting.ref, refunded.ref}
    assert (await shop.order_desk.pending(grant=operator_of(keys))).lines[0].order.ref == refunded.ref
    # the admin delivers by hand: no longer pending
    await shop.order_desk.deliver(waiting.ref, "CODE-123", grant=ADMIN, actor="a")
    assert {ln.order.ref for ln in (await shop.order_desk.pending(grant=OWNER)).lines} == {refunded.ref}


async def test_resend_queues_the_delivery_again_only_for_a_delivered_order(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    order = await shop.checkout.checkout(await buyer(shop), pid, 1, STARS)
    with pytest.raises(InvalidOrderState):
        await shop.order_desk.resend(order.ref, grant=ADMIN, actor="a")
    await pay(shop, order)

    def kinds(uow: UnitOfWork) -> list[str]:
        return [r[0] for r in uow.repo.conn.execute(select(t.outbox.c.kind)).all()]

    before = await shop.ctx.read(kinds)
    await shop.order_desk.resend(order.ref, grant=ADMIN, actor="a")
    assert (await shop.ctx.read(kinds)) == [*before, "order_delivered"]
    assert len(await _audit(shop, "delivery_resent")) == 1


async def test_a_banned_buyer_cannot_check_out_keeps_their_orders_and_can_be_unbanned(
    any_shop: Services,
) -> None:
    shop = any_shop
    pid = await stocked(shop, 3)
    uid = await buyer(shop, "2002")
    order = await shop.checkout.checkout(uid, pid, 1, STARS)
    await pay(shop, order)
    assert await shop.buyers.ban("telegram", "2002", "chargebacks", actor="a", owners=["1"])
    assert not await shop.buyers.ban("telegram", "2002", "again", actor="a", owners=["1"])
    with pytest.raises(UserBlocklisted):
        await shop.checkout.checkout(uid, pid, 1, STARS)
    assert [o.ref for o in await shop.orders.for_user(uid)] == [order.ref]
    profile = await shop.buyers.profile("telegram", "2002")
    assert profile.user.blocklisted and profile.orders == 1 and profile.spent == {STARS: order.amount}
    assert await shop.buyers.unban("telegram", "2002", "sorted out", actor="a", owners=["1"])
    await shop.checkout.checkout(uid, pid, 1, STARS)
    assert [d["reason"] for d in await _audit(shop, "user_banned")] == ["chargebacks"]
    assert [d["reason"] for d in await _audit(shop, "user_unbanned")] == ["sorted out"]


async def test_owners_and_staff_are_never_banned_and_a_ban_needs_a_reason(any_shop: Services) -> None:
    shop = any_shop
    await shop.staff.put("telegram", "3003", Role.ADMIN, actor="o", owners=["1"])
    with pytest.raises(NotBannable):
        await shop.buyers.ban("telegram", "1", "no", actor="a", owners=["1"])
    with pytest.raises(NotBannable):
        await shop.buyers.ban("telegram", "3003", "no", actor="a", owners=["1"])
    with pytest.raises(InvalidInput):
        await shop.buyers.ban("telegram", "4004", "  ", actor="a", owners=["1"])
    # someone the shop has not met yet can be banned ahead of their first order
    assert await shop.buyers.ban("telegram", "4004", "known fraudster", actor="a", owners=["1"])
    assert (await shop.buyers.profile("telegram", "4004")).user.blocklisted
    with pytest.raises(BuyerNotFound):
        await shop.buyers.unban("telegram", "5005", "who?", actor="a", owners=["1"])
