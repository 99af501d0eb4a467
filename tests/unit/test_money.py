from __future__ import annotations

import pytest

from core.errors import InvalidInput
from handlers.money import format_amount, parse_amount


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("9.90", "USD", 990),
        ("9.9", "USD", 990),
        ("1,000", "USD", 100000),
        ("100", "JPY", 100),
        ("0.01", "CNY", 1),
        ("50", "XTR", 50),
    ],
)
def test_prices_typed_by_admins_become_exact_minor_units(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [("1.234", "USD"), ("1.5", "JPY"), ("-1", "USD"), ("abc", "USD"), ("NaN", "USD"), ("Infinity", "USD")],
)
def test_amounts_that_are_not_exact_minor_units_are_refused(text: str, currency: str) -> None:
    with pytest.raises(InvalidInput):
        parse_amount(text, currency)


def test_formatting_uses_the_currency_and_locale() -> None:
    assert format_amount(990, "USD") == "$9.90"
    assert format_amount(990, "CNY", "zh_CN") == "¥9.90"
    assert format_amount(50, "XTR") == "50 ⭐"


@pytest.mark.parametrize("text", ["1e999999", "1E+999999999", "9e5000", "1" * 5000, "1" * 19, "1e18"])
def test_amounts_of_more_than_18_whole_digits_are_refused_not_overflowed(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_amount(text, "USD")


def test_an_amount_of_18_whole_digits_is_still_an_amount() -> None:
    assert parse_amount("9" * 18, "XTR") == int("9" * 18)
