"""The pure rules of withdrawals: what a balance pays in the shop currency, and how typed payout text
(details, a payment reference, a rejection reason) is cleaned before anyone reads it."""

from __future__ import annotations

import pytest

from core.errors import PayoutTextInvalid
from core.models import STARS, payout_value
from core.services.payouts import MAX_DETAILS, typed_text


def test_the_shop_currency_is_withdrawn_as_it_is() -> None:
    assert payout_value(1234, "USD", "USD", 0) == 1234
    assert payout_value(1234, "USD", "USD", 7) == 1234


def test_stars_are_withdrawn_only_at_a_rate_in_whole_minor_units() -> None:
    assert payout_value(50, STARS, "USD", 0) is None  # only spent
    assert payout_value(50, STARS, "USD", 25) == 1250
    assert payout_value(3, STARS, "CNY", 1) == 3


def test_a_currency_that_is_not_the_shops_is_never_withdrawn() -> None:
    assert payout_value(1000, "EUR", "USD", 25) is None


def test_typed_text_loses_invisible_control_and_bidi_characters_and_folds_whitespace() -> None:
    text = "  PayPal:\u200b ann@\u202eexample.com\u2066 \n\t x\x00\x1b  "
    assert typed_text(text, MAX_DETAILS) == "PayPal: ann@example.com x"
    assert typed_text("支付宝 13800000000", MAX_DETAILS) == "支付宝 13800000000"
    assert typed_text("e\u0301", 10) == "\u00e9"  # NFC
    assert typed_text("Ann\u3164 Lee\ufe0f\u034f", 10) == "Ann Lee"  # blank to the eye, as in a key


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n ",
        "\u200b\u200c\u200d\ufeff",
        "\x00\x07\x1b",
        "x" * 201,
        "\u3164\u3164",  # Hangul filler: a letter to Unicode, blank to the eye
        "\u115f\u1160 \uffa0",  # the other Hangul fillers
        "\u034f\ufe0f\U000e0041",  # combining grapheme joiner, a variation selector, a tag
    ],
)
def test_typed_text_that_is_empty_once_cleaned_or_too_long_is_refused(text: str) -> None:
    with pytest.raises(PayoutTextInvalid) as e:
        typed_text(text, MAX_DETAILS)
    assert e.value.params == {"max": MAX_DETAILS}


def test_the_limit_counts_what_is_kept() -> None:
    assert typed_text("x" * 200 + "\u200b" * 50, MAX_DETAILS) == "x" * 200
