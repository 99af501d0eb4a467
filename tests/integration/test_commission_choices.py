"""The commission choices an admin makes, on both databases: a product's own rates (which come before the
shop's COMMISSION_RATES, 0 meaning none on it), and "mark paid" with or without commission (without by
default, the choice audited and kept on the payment). The rates each delivery applied are kept on the
order, and the ledger check stays clean."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core import tables as t
from core.errors import InvalidInput
from core.models import CommissionStatus, Order
from core.roles import Grant, Role
from core.services import Services
from tests.conftest import pay, query, referral_chain, stocked

ADMIN = Grant(Role.ADMIN)


async def _commissions(shop: Services, order: Order) -> list[tuple[int, int, int, int]]:
    """(level, beneficiary, rate, amount) of the order's commissions."""
    return [(c.level, c.beneficiary_id, c.rate_bp, c.amount) for c in await shop.ledger.commissions(order.id)]


async def _bought(shop: Services, uid: int, pid: int, charge: str) -> Order:
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    await pay(shop, order, charge=charge)
    return await shop.orders.get(order.ref)


async def test_a_products_own_rates_replace_the_shops_for_every_level(any_shop: Services) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    own = await stocked(shop, 3, price=1000, commission_rates=(2000, 250))
    one_level = await stocked(shop, 3, price=1000, commission_rates=(1500,))
    shops = await stocked(shop, 3, price=1000)
    a = await _bought(shop, uid, own, "ch-1")
    b = await _bought(shop, uid, one_level, "ch-2")
    c = await _bought(shop, uid, shops, "ch-3")
    assert await _commissions(shop, a) == [(1, mid, 2000, 200), (2, top, 250, 25)]
    assert await _commissions(shop, b) == [(1, mid, 1500, 150)]  # no level 2 named: nobody earns there
    assert await _commissions(shop, c) == [(1, mid, 1000, 100), (2, top, 500, 50)]
    # what each delivery applied is kept on the order
    assert [o.commission_rates for o in (a, b, c)] == [(2000, 250), (1500, 0), (1000, 500)]
    assert await shop.ledger.check() == []


async def test_a_product_rate_of_zero_means_no_commission_and_none_gives_the_shops_back(
    any_shop: Services,
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    pid = await stocked(shop, 3, price=1000, commission_rates=(0,))
    first = await _bought(shop, uid, pid, "ch-1")
    assert await _commissions(shop, first) == []
    assert first.commission_rates == (0, 0)
    product = await shop.catalog.update_product(pid, actor="cli", commission_rates=None)
    assert product.commission_rates is None
    second = await _bought(shop, uid, pid, "ch-2")
    assert await _commissions(shop, second) == [(1, mid, 1000, 100), (2, top, 500, 50)]
    # the rate applied to the first order stays as it was: the check does not call it missing now
    assert await shop.ledger.check() == []


async def test_a_blocklisted_distributors_level_is_kept_as_a_rate_of_zero(any_shop: Services) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    await shop.users.set_blocklisted(mid, True)
    order = await _bought(shop, uid, await stocked(shop, 3, price=1000), "ch-1")
    assert await _commissions(shop, order) == [(2, top, 500, 50)]
    assert order.commission_rates == (0, 500)
    await shop.users.set_blocklisted(mid, False)  # unblocked since: the check still knows why none
    assert await shop.ledger.check() == []


async def test_rates_a_shop_cannot_pay_are_refused_and_change_nothing(any_shop: Services) -> None:
    shop = any_shop
    pid = await stocked(shop, 1)
    for bad in ((6000, 5000), (10_001,), (-1,), (), (1000, 500, 100), ("10",), 10):
        with pytest.raises(InvalidInput) as e:
            await shop.catalog.update_product(pid, actor="cli", commission_rates=bad)
        assert e.value.params.get("field") == "commission_rates"
    with pytest.raises(InvalidInput):
        await stocked(shop, 1, commission_rates=(5000, 5001))
    assert (await shop.catalog.product(pid)).commission_rates is None
    a = t.audit_log
    rows = await query(shop, select(a.c.detail).where(a.c.action == "product_updated"))
    assert rows == []
    product = await shop.catalog.update_product(pid, actor="cli", commission_rates=[750, 0])
    assert product.commission_rates == (750, 0)  # a list (as the editor's JSON draft holds it) is taken
    rows = await query(shop, select(a.c.detail).where(a.c.action == "product_updated"))
    assert [r[0] for r in rows] == [{"fields": ["commission_rates"]}]


async def _marked(shop: Services, uid: int, *, with_commission: bool | None) -> Order:
    pid = await stocked(shop, 2, price=1000)
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    extra = {} if with_commission is None else {"with_commission": with_commission}
    result = await shop.order_desk.mark_paid(order.ref, order.amount, "cash", grant=ADMIN, actor="a", **extra)
    assert result.order is not None
    return await shop.orders.get(order.ref)  # as its delivery's reactions left it


async def _marked_audit(shop: Services) -> list[object]:
    a = t.audit_log
    rows = await query(shop, select(a.c.detail).where(a.c.action == "payment_marked_paid").order_by(a.c.id))
    return [r[0]["commission"] for r in rows]


async def test_mark_paid_earns_no_commission_unless_the_admin_chooses_so_and_the_choice_is_audited(
    any_shop: Services,
) -> None:
    shop = any_shop
    uid, mid, top = await referral_chain(shop)
    plain = await _marked(shop, uid, with_commission=None)  # the default
    without = await _marked(shop, uid, with_commission=False)
    with_ = await _marked(shop, uid, with_commission=True)
    assert await _commissions(shop, plain) == [] and await _commissions(shop, without) == []
    assert await _commissions(shop, with_) == [(1, mid, 1000, 100), (2, top, 500, 50)]
    assert plain.commission_rates is None and with_.commission_rates == (1000, 500)
    assert await _marked_audit(shop) == [False, False, True]
    p = t.payments
    rows = await query(shop, select(p.c.order_id, p.c.earns_commission).order_by(p.c.id))
    assert [(r[0], bool(r[1])) for r in rows] == [(plain.id, False), (without.id, False), (with_.id, True)]
    assert await shop.ledger.check() == []


async def test_a_replayed_mark_paid_keeps_the_first_choice(any_shop: Services) -> None:
    shop = any_shop
    uid, _mid, _top = await referral_chain(shop)
    pid = await stocked(shop, 2, price=1000)
    order = await shop.checkout.checkout(uid, pid, 1, "USD")
    first = await shop.order_desk.mark_paid(order.ref, order.amount, "cash", grant=ADMIN, actor="a")
    again = await shop.order_desk.mark_paid(
        order.ref, order.amount, "cash", grant=ADMIN, actor="a", with_commission=True
    )
    assert not first.replay and again.replay
    assert await _commissions(shop, order) == []
    assert await _marked_audit(shop) == [False]


async def test_commission_chosen_on_a_manual_order_follows_it_through_a_refund(any_shop: Services) -> None:
    shop = any_shop
    uid, _mid, _top = await referral_chain(shop)
    order = await _marked(shop, uid, with_commission=True)
    await shop.refunds.request_refund(order.ref, actor="a")
    statuses = {c.status for c in await shop.ledger.commissions(order.id)}
    assert statuses == {CommissionStatus.REVERSED}
    assert await shop.ledger.check() == []
