"""Distributors on both databases: the summaries the dashboards, the admins' overview and the CLI read
(funnel, earned, pending / available / paid per currency) after purchases, refunds and settlement; an
admin's rate override changes later commissions only; a blocked distributor earns none and the level above
still does; every change is audited."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from core.errors import (
    DistributorNotFound,
    InvalidRates,
    OwnerTermsRefused,
    OwnTermsRefused,
    RateNotAPercentage,
    RatesOverWhole,
)
from core.ledger import post
from core.models import STARS, AccountKind, CommissionStatus, Order
from core.repositories.distributors import DistributorSummary
from core.services import Services
from tests.conftest import bought, buyer, in_read, in_write, refer, referral_chain

ACTOR = "telegram:7"


def _money(s: DistributorSummary) -> dict[str, tuple[int, int, int, int]]:
    """currency -> (earned, pending, available, paid out)"""
    return {
        e.currency: (
            e.earned,
            e.balance(AccountKind.PENDING),
            e.balance(AccountKind.AVAILABLE),
            e.balance(AccountKind.PAID_OUT),
        )
        for e in s.earnings
    }


async def _levels(shop: Services, order: Order) -> list[tuple[int, int, int, int]]:
    return [(c.level, c.beneficiary_id, c.rate_bp, c.amount) for c in await shop.ledger.commissions(order.id)]


async def test_summaries_follow_purchases_refunds_and_settlement(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    other = await buyer(shop, "9004")  # brought by mid, never buys
    await refer(shop, other, mid)
    first = await bought(shop, uid, price=1999)
    await bought(shop, uid, charge="ch-2", price=1000)
    await bought(shop, uid, currency=STARS, charge="ch-3", price_stars=40)

    card = await shop.distributors.card(mid)
    assert (card.funnel.buyers, card.funnel.orders) == (1, 3)
    assert _money(card) == {"USD": (299, 299, 0, 0), STARS: (4, 4, 0, 0)}
    assert _money(await shop.distributors.card(top)) == {"USD": (149, 149, 0, 0), STARS: (2, 2, 0, 0)}

    clock.advance(days=7)
    assert await shop.ledger.settle() == 6
    await shop.refunds.request_refund(first.ref, actor=ACTOR)  # after settlement: clawed back
    late = await bought(shop, uid, charge="ch-4", price=500)  # pending
    await shop.refunds.request_refund(late.ref, actor=ACTOR)  # reversed
    now = clock.now()
    await in_write(  # a payout of 50 cents, by hand here (the payout queue is another screen's)
        shop,
        lambda uow: post(
            uow,
            "test-payout",
            "payout",
            [(mid, AccountKind.AVAILABLE, -50, "USD"), (mid, AccountKind.PAID_OUT, 50, "USD")],
            now,
        ),
    )
    card = await shop.distributors.card(mid)
    assert (card.funnel.buyers, card.funnel.orders) == (1, 2)  # refunded orders are no longer sales
    assert _money(card) == {"USD": (100, 0, 50, 50), STARS: (4, 0, 4, 0)}

    report = {s.user.id: s for s in await shop.distributors.report()}
    assert set(report) == {mid, top}  # the buyers who brought nobody are no distributors
    assert _money(report[mid]) == _money(card)
    overview = await shop.distributors.overview()
    assert overview.currency == "USD" and overview.currencies == ("USD", STARS)
    assert [s.user.id for s in overview.top] == [mid, top]
    assert (overview.totals.distributors, overview.totals.referred_buyers) == (2, 1)
    usd = next(e for e in overview.totals.earnings if e.currency == "USD")
    assert (usd.earned, usd.balance(AccountKind.AVAILABLE), usd.balance(AccountKind.PAID_OUT)) == (
        150,
        100,
        50,
    )
    assert await shop.ledger.check() == []


async def test_the_dashboard_pages_a_distributors_commissions_newest_first_with_orders_masked(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid, mid, _top = await referral_chain(shop)
    orders = []
    for i in range(12):
        orders.append(await bought(shop, uid, charge=f"ch-{i}"))
        clock.advance(minutes=1)
    page = await shop.distributors.dashboard(mid)
    assert len(page.commissions) == 10 and page.has_more
    newest = orders[-1].ref
    assert page.commissions[0].order == f"{newest[:2]}…{newest[-2:]}"
    assert all(newest not in c.order for c in page.commissions)
    assert (page.commissions[0].level, page.commissions[0].amount) == (1, 99)
    assert page.commissions[0].status is CommissionStatus.PENDING
    older = await shop.distributors.dashboard(mid, page=1)
    assert len(older.commissions) == 2 and not older.has_more
    assert older.commissions[-1].order == f"{orders[0].ref[:2]}…{orders[0].ref[-2:]}"
    nobody = await buyer(shop, "9999")
    empty = await shop.distributors.dashboard(nobody)
    assert empty.commissions == () and empty.summary.earnings == ()


async def test_the_overview_ranks_by_what_was_earned_in_the_chosen_currency(any_shop: Services) -> None:
    shop = any_shop
    a, b = await buyer(shop, "8001"), await buyer(shop, "8002")
    ba, bb = await buyer(shop, "8003"), await buyer(shop, "8004")
    await refer(shop, ba, a)
    await refer(shop, bb, b)
    await bought(shop, ba, price=1000)  # a: 100 cents
    await bought(shop, bb, charge="ch-2", price=2000)  # b: 200 cents
    await bought(shop, ba, currency=STARS, charge="ch-3", price_stars=100)  # a: 10 Stars
    assert [s.user.id for s in (await shop.distributors.overview()).top] == [b, a]
    assert [s.user.id for s in (await shop.distributors.overview(STARS)).top] == [a, b]
    assert (await shop.distributors.overview("EUR")).currency == "USD"  # none earned in it: the shop's


async def test_an_override_changes_only_later_commissions_of_that_distributor(any_shop: Services) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    before = await bought(shop, uid, price=1000)
    terms = await shop.distributors.set_rates(mid, "12,6", actor=ACTOR)
    assert terms.rates == (1200, 600)
    after = await bought(shop, uid, charge="ch-2", price=1000)
    assert await _levels(shop, before) == [(1, mid, 1000, 100), (2, top, 500, 50)]
    assert await _levels(shop, after) == [(1, mid, 1200, 120), (2, top, 500, 50)]  # top keeps the shop's
    # top's own override: they earn at level 2 here, so its second figure applies
    await shop.distributors.set_rates(top, "10,8", actor=ACTOR)
    third = await bought(shop, uid, charge="ch-3", price=1000)
    assert await _levels(shop, third) == [(1, mid, 1200, 120), (2, top, 800, 80)]
    # back to the shop's rates
    await shop.distributors.set_rates(mid, None, actor=ACTOR)
    fourth = await bought(shop, uid, charge="ch-4", price=1000)
    assert (await _levels(shop, fourth))[0] == (1, mid, 1000, 100)
    assert (await shop.distributors.card(mid)).rates is None
    assert await shop.ledger.check() == []


async def test_overrides_of_several_distributors_never_pay_more_than_the_order_brought_in(
    any_shop: Services,
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    await shop.distributors.set_rates(mid, "80", actor=ACTOR)
    await shop.distributors.set_rates(top, "0,70", actor=ACTOR)
    order = await bought(shop, uid, price=1000)
    # level 2's 70 % is cut to the 20 % level 1 left: the rate it was paid at is the one recorded
    assert await _levels(shop, order) == [(1, mid, 8000, 800), (2, top, 2000, 200)]
    assert await shop.ledger.check() == []


async def test_a_blocked_distributor_earns_nothing_the_level_above_does_and_past_commissions_stay(
    any_shop: Services, clock: FrozenClock
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    before = await bought(shop, uid, price=1000)
    assert await shop.distributors.set_blocked(mid, True, actor=ACTOR)
    assert not await shop.distributors.set_blocked(mid, True, actor=ACTOR)  # already: nothing written
    during = await bought(shop, uid, charge="ch-2", price=1000)
    assert await _levels(shop, during) == [(2, top, 500, 50)]
    assert [c.status for c in await shop.ledger.commissions(before.id)] == [CommissionStatus.PENDING] * 2
    blocked = await shop.distributors.card(mid)
    assert blocked.blocked and _money(blocked)["USD"][:2] == (100, 100)
    # blocking is not a ban: they still buy
    own = await bought(shop, mid, charge="ch-3", price=1000)
    assert (await shop.orders.get(own.ref)).status.value == "delivered"
    assert await shop.distributors.set_blocked(mid, False, actor=ACTOR)
    later = await bought(shop, uid, charge="ch-4", price=1000)
    assert [lv[:2] for lv in await _levels(shop, later)] == [(1, mid), (2, top)]
    assert await shop.ledger.check() == []


async def test_changes_are_audited_and_bad_rates_or_users_change_nothing(any_shop: Services) -> None:
    shop = any_shop
    _uid, mid, _top = await referral_chain(shop)
    for text, error in [
        ("12,6,3", InvalidRates),
        ("", InvalidRates),
        ("twelve", RateNotAPercentage),
        ("12.345", RateNotAPercentage),
        ("-1", RateNotAPercentage),
        ("NaN", RateNotAPercentage),
        ("60,50", RatesOverWhole),
    ]:
        with pytest.raises(error):
            await shop.distributors.set_rates(mid, text, actor=ACTOR)
    with pytest.raises(DistributorNotFound):
        await shop.distributors.set_rates(424242, "10", actor=ACTOR)
    with pytest.raises(DistributorNotFound):
        await shop.distributors.set_blocked(424242, True, actor=ACTOR)
    with pytest.raises(DistributorNotFound):
        await shop.distributors.card(424242)
    assert (await shop.distributors.card(mid)).terms is None
    await shop.distributors.set_rates(mid, " 12.5 , 6 ", actor=ACTOR)
    await shop.distributors.set_rates(mid, "12.5,6", actor=ACTOR)  # the same: not audited again
    await shop.distributors.set_blocked(mid, True, actor=ACTOR)
    await shop.distributors.set_rates(mid, None, actor=ACTOR)
    await shop.distributors.set_blocked(mid, False, actor=ACTOR)
    recent = await in_read(shop, lambda uow: uow.repo.audit.recent(limit=50))
    trail = [e for e in recent if e.action.startswith("distributor_")]
    assert [(e.action, e.detail) for e in reversed(trail)] == [
        ("distributor_rates_set", {"user_id": mid, "old": "default", "new": "12.5,6"}),
        ("distributor_blocked", {"user_id": mid}),
        ("distributor_rates_set", {"user_id": mid, "old": "12.5,6", "new": "default"}),
        ("distributor_unblocked", {"user_id": mid}),
    ]
    assert all(e.actor == ACTOR for e in trail)


async def test_nobody_sets_their_own_terms_and_only_an_owner_sets_an_owners(any_shop: Services) -> None:
    shop = any_shop
    _uid, mid, top = await referral_chain(shop)  # mid is telegram:9002, top telegram:9001
    owners = ["telegram:9001", "telegram:1"]
    for change in (
        lambda: shop.distributors.set_rates(mid, "100", actor="telegram:9002", owners=owners),
        lambda: shop.distributors.set_blocked(mid, True, actor="telegram:9002", owners=owners),
        lambda: shop.distributors.set_rates(top, "0", actor="telegram:9001", owners=owners),
    ):
        with pytest.raises(OwnTermsRefused):
            await change()
    for change in (
        lambda: shop.distributors.set_rates(top, "0", actor="telegram:9002", owners=owners),
        lambda: shop.distributors.set_blocked(top, True, actor="telegram:9002", owners=owners),
    ):
        with pytest.raises(OwnerTermsRefused):
            await change()
    assert (await shop.distributors.card(mid)).terms is None
    assert (await shop.distributors.card(top)).terms is None
    recent = await in_read(shop, lambda uow: uow.repo.audit.recent(limit=50))
    assert not [e for e in recent if e.action.startswith("distributor_")]
    # an owner sets another owner's and a staff member's; anyone with the power a distributor's
    assert await shop.distributors.set_blocked(top, True, actor="telegram:1", owners=owners)
    await shop.distributors.set_rates(mid, "12", actor="telegram:1", owners=owners)
    await shop.distributors.set_rates(mid, "15", actor="telegram:77", owners=owners)
    assert (await shop.distributors.card(mid)).rates == (1500,)
