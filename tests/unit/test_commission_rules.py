from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.ledger import MANUAL, UnbalancedPosting, commission_base, post, rates_for, referrer_chain
from core.ledger_check import paid_for
from core.models import (
    ALREADY_PAID,
    AccountKind,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    User,
    commission_amounts,
)
from core.rates import checked_rates, commission_rates_bp, format_rates


def test_each_level_is_rounded_down_to_the_minor_unit_on_its_own_and_the_rest_is_the_shops() -> None:
    assert commission_amounts(1999, (1000, 500)) == (199, 99)
    assert commission_amounts(15, (1000, 500)) == (1, 0)  # Stars: whole
    assert commission_amounts(0, (1000, 500)) == (0, 0)
    assert commission_amounts(10**15 + 7, (1000,)) == (10**14,)  # no float rounding on large amounts
    assert commission_amounts(999, (750, 225)) == (74, 22)


def test_a_negative_base_is_refused() -> None:
    with pytest.raises(ValueError):
        commission_amounts(-1, (1000,))


def test_a_posting_that_does_not_sum_to_zero_per_currency_is_refused_before_anything_is_written() -> None:
    legs = [(None, AccountKind.COMMISSION_EXPENSE, -10, "USD"), (1, AccountKind.PENDING, 10, "XTR")]
    with pytest.raises(UnbalancedPosting):
        post(None, "k", "commission", legs, None)  # type: ignore[arg-type]
    with pytest.raises(UnbalancedPosting):
        post(None, "k", "commission", [], None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- which rate applies


def test_a_products_own_rates_come_first_then_the_distributors_then_the_shops() -> None:
    shop, distributor, product = (1000, 500), (1500, 700), (2000, 100)
    assert [rates_for(product, distributor, shop, level) for level in (1, 2)] == [2000, 100]
    assert [rates_for(None, distributor, shop, level) for level in (1, 2)] == [1500, 700]
    assert [rates_for(None, None, shop, level) for level in (1, 2)] == [1000, 500]


def test_the_rates_that_decide_decide_every_level_and_a_level_they_do_not_name_earns_nothing() -> None:
    assert [rates_for((0,), (1500, 700), (1000, 500), level) for level in (1, 2)] == [0, 0]
    assert [rates_for((1200,), None, (1000, 500), level) for level in (1, 2)] == [1200, 0]
    assert [rates_for(None, None, (1000,), level) for level in (1, 2, 3)] == [1000, 0, 0]


def test_rates_are_typed_in_percent_kept_in_basis_points_and_shown_as_typed() -> None:
    assert commission_rates_bp("10, 2.5") == (1000, 250)
    assert format_rates((1000, 250)) == "10,2.5"
    assert format_rates((0,)) == "0" and format_rates((1234, 5)) == "12.34,0.05"
    for bad in ("", "10,5,1", "-1", "10.001", "60,50", "NaN", "1e3", "abc"):
        with pytest.raises(ValueError):
            commission_rates_bp(bad)
    for bad_bp in ((), (1000, 500, 100), (10_001,), (-1,), (6000, 5000)):
        with pytest.raises(ValueError):
            checked_rates(bad_bp)


def _user(uid: int, referrer: int | None, blocklisted: bool = False) -> User:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return User(uid, "telegram", str(uid), "en", False, None, blocklisted, False, referrer, t0)


def test_the_referrer_chain_stops_at_two_levels_at_a_loop_and_at_an_unknown_user() -> None:
    users = {u.id: u for u in (_user(1, 2), _user(2, 3), _user(3, 4), _user(4, None), _user(5, 5))}
    assert [u.id for u in referrer_chain(users.get, users[1])] == [2, 3]
    assert [u.id for u in referrer_chain(users.get, users[3])] == [4]
    assert referrer_chain(users.get, users[5]) == []  # their own referrer: nobody
    loop = {1: _user(1, 2), 2: _user(2, 1)}
    assert [u.id for u in referrer_chain(loop.get, loop[1])] == [2]  # never back to the buyer
    assert referrer_chain({}.get, _user(9, 8)) == []


def _order(status: OrderStatus = OrderStatus.DELIVERED, currency: str = "USD") -> Order:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return Order(1, "R1", 1, 1, 1, currency, 990, status, t0, t0, t0, t0, None, None)


def _payment(
    provider: str, status: PaymentStatus, *, reason: str | None = None, earns: bool = False
) -> Payment:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return Payment(1, provider, "c", 1, "R1", 1, 990, "USD", status, reason, t0, None, earns)


def test_an_order_marked_paid_earns_commission_only_when_the_admin_chose_so() -> None:
    accepted = PaymentStatus.ACCEPTED
    assert commission_base(_order(), [_payment("telegram", accepted)]) == 990
    assert commission_base(_order(), [_payment(MANUAL, accepted)]) is None
    assert commission_base(_order(), [_payment(MANUAL, accepted, earns=True)]) == 990
    assert commission_base(_order(), []) is None


def test_a_refunded_orders_base_is_what_its_refund_owes_back_not_a_second_charge() -> None:
    refunded = _order(OrderStatus.REFUNDED)
    paid = _payment("telegram", PaymentStatus.REFUNDED, reason="admin")
    second = _payment("telegram", PaymentStatus.REFUND_DUE, reason=ALREADY_PAID)
    assert paid_for(refunded, [paid, second]) == 990
    assert paid_for(_order(), [paid, second]) is None  # delivered: only accepted payments count
