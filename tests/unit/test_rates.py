"""Commission rates: percent text to basis points and back, and which rate a commission is paid at
(product override > distributor override > COMMISSION_RATES, level by level)."""

from __future__ import annotations

import pytest

from core.errors import InvalidRates, RateNotAPercentage, RatesOverWhole
from core.rates import commission_rate, format_rates, parse_rates

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
    assert [commission_rate(level, SHOP) for level in (1, 2, 3)] == [1000, 500, 0]
    assert commission_rate(2, (1000,)) == 0


def test_a_distributors_override_replaces_the_shops_rates_level_by_level() -> None:
    assert commission_rate(1, SHOP, distributor=(1200, 600)) == 1200
    assert commission_rate(2, SHOP, distributor=(1200, 600)) == 600
    # a level the override does not list follows the shop's
    assert commission_rate(2, SHOP, distributor=(1500,)) == 500
    assert commission_rate(2, SHOP, distributor=(1500, 0)) == 0
    # it also reaches a level the shop does not pay
    assert commission_rate(2, (1000,), distributor=(1000, 300)) == 300


def test_a_products_override_comes_before_the_distributors() -> None:
    assert commission_rate(1, SHOP, distributor=(1200, 600), product=(2000, 100)) == 2000
    assert commission_rate(2, SHOP, distributor=(1200, 600), product=(2000,)) == 600
    assert commission_rate(2, SHOP, product=(2000,)) == 500
    assert commission_rate(1, SHOP, product=(0,)) == 0


def test_no_level_below_one_is_paid() -> None:
    assert commission_rate(0, SHOP, distributor=(1200,)) == 0
