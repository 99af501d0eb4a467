"""Commissions in the double-entry ledger, on both databases: two levels on what was paid, rounded down per
level; none on a manual "mark paid", to a blocklisted or self-referring distributor, or twice for one order;
pending for the holding period, then settled (once, however many settlements run); reversed by a refund
before settlement, clawed back after; and every posting sums to zero."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from core import tables as t
from core.clock import FrozenClock
from core.context import UnitOfWork
from core.events import OrderDelivered
from core.ledger import settle_due
from core.models import STARS, AccountKind, Commission, CommissionStatus
from core.services import Services
from tests.conftest import bought, buyer, in_read, in_write, pay, referral_chain, stocked

HOLD = timedelta(days=7)


def _amounts(cs: list[Commission]) -> list[tuple[int, int, str, CommissionStatus]]:
    return [(c.level, c.amount, c.currency, c.status) for c in cs]


async def _balance(shop: Services, owner: int | None, kind: AccountKind, currency: str) -> int:
    found = [b.amount for b in await shop.ledger.balances(owner) if b.kind is kind and b.currency == currency]
    return sum(found)


async def _postings_sum_to_zero_and_the_ledger_checks_clean(shop: Services) -> None:
    def sums(uow: UnitOfWork) -> list[tuple[int, str, int]]:
        e = t.ledger_entries
        q = select(e.c.posting_id, e.c.currency, e.c.amount)
        return [(r[0], r[1], r[2]) for r in uow.repo.conn.execute(q).all()]

    totals: dict[tuple[int, str], int] = {}
    for pid, cur, amount in await in_read(shop, sums):
        totals[(pid, cur)] = totals.get((pid, cur), 0) + amount
    assert totals and all(v == 0 for v in totals.values())
    assert await shop.ledger.check() == []


async def test_two_levels_are_paid_on_what_was_paid_rounded_down_per_level_in_fiat(
    any_shop: Services,
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    order = await bought(shop, uid, price=1999)
    assert _amounts(await shop.ledger.commissions(order.id)) == [
        (1, 199, "USD", CommissionStatus.PENDING),  # 199.9 cents, rounded down
        (2, 99, "USD", CommissionStatus.PENDING),  # 99.95 cents, rounded down
    ]
    cs = await shop.ledger.commissions(order.id)
    assert [c.beneficiary_id for c in cs] == [mid, top]
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 199
    assert await _balance(shop, top, AccountKind.PENDING, "USD") == 99
    assert await _balance(shop, None, AccountKind.COMMISSION_EXPENSE, "USD") == -298
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


async def test_a_stars_order_earns_whole_stars_rounded_down(any_shop: Services) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    order = await bought(shop, uid, currency=STARS, price_stars=15)
    assert _amounts(await shop.ledger.commissions(order.id)) == [(1, 1, STARS, CommissionStatus.PENDING)]
    assert await _balance(shop, mid, AccountKind.PENDING, STARS) == 1
    assert await _balance(shop, top, AccountKind.PENDING, STARS) == 0  # 0.75 Star: the shop's
    order2 = await bought(shop, uid, currency=STARS, charge="ch-2", price_stars=40)
    assert _amounts(await shop.ledger.commissions(order2.id)) == [
        (1, 4, STARS, CommissionStatus.PENDING),
        (2, 2, STARS, CommissionStatus.PENDING),
    ]
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


async def test_nobody_earns_on_their_own_purchase_or_twice_in_a_loop(any_shop: Services) -> None:
    shop = any_shop
    uid = await buyer(shop, "9100")
    # Even if a row says so (written before the rule, by hand): no commission to oneself.
    await in_write(
        shop,
        lambda uow: uow.repo.conn.execute(update(t.users).where(t.users.c.id == uid).values(referrer_id=uid)),
    )
    order = await bought(shop, uid)
    assert await shop.ledger.commissions(order.id) == []
    # A→B→A: B earns level 1 on A's order; level 2 would be A itself.
    other = await buyer(shop, "9101")
    await in_write(
        shop,
        lambda uow: uow.repo.conn.execute(
            update(t.users).where(t.users.c.id == other).values(referrer_id=uid)
        ),
    )
    await in_write(
        shop,
        lambda uow: uow.repo.conn.execute(
            update(t.users).where(t.users.c.id == uid).values(referrer_id=other)
        ),
    )
    order2 = await bought(shop, uid, charge="ch-2")
    cs = await shop.ledger.commissions(order2.id)
    assert [(c.level, c.beneficiary_id) for c in cs] == [(1, other)]


async def test_a_replayed_payment_or_delivery_posts_one_commission_per_level(any_shop: Services) -> None:
    shop = any_shop
    uid, mid, _top = await referral_chain(shop)
    order = await bought(shop, uid)
    again = await pay(shop, order, charge="ch-1")
    assert again.replay
    delivered = await shop.orders.get(order.ref)

    def replay_delivery(uow: UnitOfWork) -> None:
        product = uow.repo.catalog.product(order.product_id)
        assert product is not None and delivered.delivered_at is not None
        at = delivered.delivered_at
        uow.emit(OrderDelivered(at=at, actor="test", order=delivered, product=product, key_ids=()))

    await in_write(shop, replay_delivery)
    assert len(await shop.ledger.commissions(order.id)) == 2
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 99
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


async def test_a_delivery_replayed_after_the_terms_changed_posts_nothing_and_keeps_its_rates(
    any_shop: Services,
) -> None:
    """The rates a delivery applied are its own: replayed after the level-1 distributor was unblocked, it
    neither pays them now (money the first delivery never owed) nor rewrites the rates kept on the order."""
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    await shop.distributors.set_blocked(mid, True, actor="telegram:7")
    order = await bought(shop, uid)
    delivered = await shop.orders.get(order.ref)
    assert delivered.commission_rates == (0, 500)
    await shop.distributors.set_blocked(mid, False, actor="telegram:7")

    def replay_delivery(uow: UnitOfWork) -> None:
        product = uow.repo.catalog.product(order.product_id)
        assert product is not None and delivered.delivered_at is not None
        at = delivered.delivered_at
        uow.emit(OrderDelivered(at=at, actor="test", order=delivered, product=product, key_ids=()))

    await in_write(shop, replay_delivery)
    cs = await shop.ledger.commissions(order.id)
    assert [(c.level, c.beneficiary_id, c.amount) for c in cs] == [(2, top, 49)]
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 0
    assert (await shop.orders.get(order.ref)).commission_rates == (0, 500)
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


async def test_an_order_an_admin_marked_paid_earns_no_commission(any_shop: Services) -> None:
    shop = any_shop
    uid, _mid, _top = await referral_chain(shop)
    pid = await stocked(shop, 2)
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    await shop.payments.confirm_manual(order.ref, order.amount, note="cash", actor="telegram:7")
    assert (await shop.orders.get(order.ref)).status.value == "delivered"
    assert await shop.ledger.commissions(order.id) == []


async def test_a_blocklisted_distributor_earns_nothing_and_the_level_above_still_does(
    any_shop: Services,
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    await shop.users.set_blocklisted(mid, True)
    order = await bought(shop, uid)
    cs = await shop.ledger.commissions(order.id)
    assert [(c.level, c.beneficiary_id, c.amount) for c in cs] == [(2, top, 49)]
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 0


async def test_a_refund_in_the_holding_period_reverses_the_pending_commissions(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    order = await bought(shop, uid)
    clock.advance(days=6)
    await shop.refunds.request_refund(order.ref, actor="telegram:7")
    assert {c.status for c in await shop.ledger.commissions(order.id)} == {CommissionStatus.REVERSED}
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 0
    assert await _balance(shop, top, AccountKind.PENDING, "USD") == 0
    assert await _balance(shop, None, AccountKind.COMMISSION_EXPENSE, "USD") == 0
    clock.advance(days=2)
    assert await shop.ledger.settle() == 0  # nothing left to settle
    assert await _balance(shop, mid, AccountKind.AVAILABLE, "USD") == 0
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


async def test_a_refund_after_settlement_claws_back_from_available_which_may_go_negative(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid, mid, _top = await referral_chain(shop)
    order = await bought(shop, uid)
    clock.advance(days=6, hours=23)
    assert await shop.ledger.settle() == 0  # not due yet
    clock.advance(hours=1)
    assert await shop.ledger.settle() == 2
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 0
    assert await _balance(shop, mid, AccountKind.AVAILABLE, "USD") == 99
    # a second order, still pending, then the first is refunded: available goes back to 0
    order2 = await bought(shop, uid, charge="ch-2")
    await shop.refunds.request_refund(order.ref, actor="telegram:7")
    assert {c.status for c in await shop.ledger.commissions(order.id)} == {CommissionStatus.CLAWED_BACK}
    assert await _balance(shop, mid, AccountKind.AVAILABLE, "USD") == 0
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 99  # order2's, untouched
    assert {c.status for c in await shop.ledger.commissions(order2.id)} == {CommissionStatus.PENDING}
    # A clawback of money already withdrawn leaves available negative (a withdrawal posted by hand here).
    from core.ledger import post

    now = clock.now()
    await in_write(
        shop,
        lambda uow: post(
            uow,
            "test-withdrawal",
            "payout",
            [(mid, AccountKind.AVAILABLE, -50, "USD"), (mid, AccountKind.PAID_OUT, 50, "USD")],
            now,
        ),
    )
    clock.advance(days=8)
    assert await shop.ledger.settle() == 2
    await shop.refunds.request_refund(order2.ref, actor="telegram:7")
    assert await _balance(shop, mid, AccountKind.AVAILABLE, "USD") == -50
    assert await _balance(shop, mid, AccountKind.PAID_OUT, "USD") == 50
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


async def test_the_check_reports_a_posting_that_does_not_sum_to_zero(any_shop: Services) -> None:
    shop = any_shop
    uid, _mid, _top = await referral_chain(shop)
    order = await bought(shop, uid)
    assert await shop.ledger.check() == []

    def tamper(uow: UnitOfWork) -> None:
        e = t.ledger_entries
        first = uow.repo.conn.execute(select(e.c.id).order_by(e.c.id).limit(1)).scalar_one()
        uow.repo.conn.execute(update(e).where(e.c.id == first).values(amount=e.c.amount - 1))

    await in_write(shop, tamper)
    drift = [d.what for d in await shop.ledger.check()]
    assert any(f"commission:{order.id}:1" in d and "sums to -1 USD" in d for d in drift), drift


async def test_two_concurrent_settlements_move_each_commission_once(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    for i in range(6):
        await bought(shop, uid, charge=f"ch-{i}")
    clock.advance(days=7)
    counts = await asyncio.gather(shop.ledger.settle(), shop.ledger.settle(), shop.ledger.settle())
    assert sum(counts) == 12
    assert await shop.ledger.settle() == 0
    assert await _balance(shop, mid, AccountKind.AVAILABLE, "USD") == 6 * 99
    assert await _balance(shop, mid, AccountKind.PENDING, "USD") == 0
    assert await _balance(shop, top, AccountKind.AVAILABLE, "USD") == 6 * 49
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


RACED = 12  # orders whose commissions a settlement and their refunds reach at once


async def test_settlements_racing_the_refunds_of_their_orders_move_each_commission_once(
    any_shop: Services, clock: FrozenClock
) -> None:
    """A refund locks the order, then its commissions; a settlement must take them in that order too (on
    PostgreSQL it once took the commissions, then the order through its posting's foreign key: a deadlock
    that failed the settlement or the admin's refund). Every commission ends reversed (the refund first)
    or clawed back (the settlement first), each with exactly its postings; nothing fails."""
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    pid = await stocked(shop, RACED, price=1000, max_qty=1)
    orders = []
    for i in range(RACED):
        order = await shop.checkout.checkout(uid, pid, 1, "USD")
        await pay(shop, order, charge=f"ch-{i}")
        orders.append(order)
    clock.advance(days=7)
    refunds = [shop.refunds.request_refund(o.ref, actor="telegram:7") for o in orders]
    half = RACED // 2
    await asyncio.gather(shop.ledger.settle(), *refunds[:half], shop.ledger.settle(), *refunds[half:])
    statuses = [c.status for o in orders for c in await shop.ledger.commissions(o.id)]
    assert len(statuses) == 2 * RACED
    assert set(statuses) <= {CommissionStatus.REVERSED, CommissionStatus.CLAWED_BACK}
    for owner in (mid, top):
        assert await _balance(shop, owner, AccountKind.PENDING, "USD") == 0
        assert await _balance(shop, owner, AccountKind.AVAILABLE, "USD") == 0
    assert await _balance(shop, None, AccountKind.COMMISSION_EXPENSE, "USD") == 0
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)


FIRSTS = 8  # distributors whose first commissions two settlements settle at once


async def test_two_settlements_making_the_same_new_accounts_at_once_both_succeed(
    any_shop: Services, clock: FrozenClock
) -> None:
    """A distributor's available account is made by their first settlement. Two settlements, each with a
    batch naming the same distributors in the opposite order, once made them in that order and waited on
    each other's (a deadlock on PostgreSQL, failing one of them)."""
    shop = any_shop
    pid = await stocked(shop, 2 * FIRSTS, price=1000, max_qty=1)
    friends, distributors = [], []
    for k in range(FIRSTS):
        dist, friend = await buyer(shop, f"d{k}"), await buyer(shop, f"f{k}")
        await in_write(
            shop,
            lambda uow, f=friend, d=dist: uow.repo.conn.execute(
                update(t.users).where(t.users.c.id == f).values(referrer_id=d)
            ),
        )
        friends.append(friend)
        distributors.append(dist)
    for i, who in enumerate(friends + friends[::-1]):  # the first batch names them 0..7, the second 7..0
        order = await shop.checkout.checkout(who, pid, 1, "USD")
        await pay(shop, order, charge=f"ch-{i}")
    clock.advance(days=7)
    now = clock.now()
    batches = await asyncio.gather(
        in_write(shop, lambda uow: settle_due(uow, now, FIRSTS)),
        in_write(shop, lambda uow: settle_due(uow, now, FIRSTS)),
    )
    assert sorted(len(b) for b in batches) == [FIRSTS, FIRSTS]
    for dist in distributors:
        assert await _balance(shop, dist, AccountKind.AVAILABLE, "USD") == 2 * 100
    await _postings_sum_to_zero_and_the_ledger_checks_clean(shop)
