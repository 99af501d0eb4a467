"""Commission rates: percent text to basis points and back, and which rate a commission is paid at
(product override > distributor override > COMMISSION_RATES, level by level)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidRates, RateNotAPercentage, RatesOverWhole
from core.ledger import capped, rates_for
from core.rates import format_rates, parse_rates

SHOP = (1000, 500)


def test_percentages_become_basis_points_per_level() -> None:
    assert parse_rates("10,5") == (1000, 500)
    assert parse_rates(" 7.5 , 2.25 ") == (750, 225)
    assert parse_rates("12") == (1200,)
    assert parse_rates("0,0") == (0, 0)
    assert parse_rates("100") == (10_000,)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidRates),
        ("10,5,2", InvalidRates),
        (",", RateNotAPercentage),
        ("ten", RateNotAPercentage),
        ("10.555", RateNotAPercentage),
        ("-1", RateNotAPercentage),
        ("100.01", RateNotAPercentage),
        ("NaN", RateNotAPercentage),
        ("Infinity", RateNotAPercentage),
        ("1e400", RateNotAPercentage),
        ("６", RateNotAPercentage),
        ("60,50", RatesOverWhole),
    ],
)
def test_what_is_not_one_or_two_percentages_adding_up_to_at_most_100_is_refused(
    text: str, error: type[InvalidRates]
) -> None:
    with pytest.raises(error):
        parse_rates(text)


def test_refusals_are_shop_errors_with_their_own_locale_keys() -> None:
    keys = {InvalidRates.key, RateNotAPercentage.key, RatesOverWhole.key}
    assert len(keys) == 3 and all(k.startswith("error-rates-") for k in keys)
    assert issubclass(RateNotAPercentage, InvalidRates) and issubclass(RatesOverWhole, InvalidRates)


@pytest.mark.parametrize("rates", [(1200, 600), (750, 225), (1,), (10_000,), (0, 5), (1250, 1205)])
def test_rates_are_shown_as_percent_text_that_reads_back_the_same(rates: tuple[int, ...]) -> None:
    assert parse_rates(format_rates(rates)) == rates


def test_rates_read_as_people_write_them() -> None:
    assert format_rates((1200, 650)) == "12,6.5"
    assert format_rates((1000, 500)) == "10,5"
    assert format_rates((5,)) == "0.05"


def test_without_overrides_the_shops_rates_apply_and_a_level_they_lack_pays_nothing() -> None:
    assert [rates_for(None, None, SHOP, level) for level in (1, 2, 3)] == [1000, 500, 0]
    assert rates_for(None, None, (1000,), 2) == 0


def test_a_distributors_override_replaces_the_shops_rates_at_every_level() -> None:
    assert [rates_for(None, (1200, 600), SHOP, level) for level in (1, 2)] == [1200, 600]
    # the override is the whole list: a level it does not name pays nothing
    assert rates_for(None, (1500,), SHOP, 2) == 0
    # it also reaches a level the shop does not pay
    assert rates_for(None, (1000, 300), (1000,), 2) == 300


def test_a_products_rates_come_before_the_distributors() -> None:
    assert rates_for((2000, 100), (1200, 600), SHOP, 1) == 2000
    assert rates_for((2000,), (1200, 600), SHOP, 2) == 0


def test_levels_together_never_pay_more_than_the_whole_order() -> None:
    assert capped([8000, 5000]) == (8000, 2000)
    assert capped([10_000, 500]) == (10_000, 0)
    assert capped([1000, 500]) == (1000, 500)


@given(st.lists(st.integers(-20_000, 20_000), max_size=4))
def test_capped_rates_are_never_negative_never_add_up_past_100_and_change_only_what_passes_it(
    rates: list[int],
) -> None:
    out = capped(rates)
    assert len(out) == len(rates) and all(r >= 0 for r in out) and sum(out) <= 10_000
    for i, (asked, kept) in enumerate(zip(rates, out, strict=True)):
        left = 10_000 - sum(out[:i])  # what the levels before it left
        if 0 <= asked <= left:
            assert kept == asked
        elif asked > left:
            assert kept == left
