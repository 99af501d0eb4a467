from __future__ import annotations

import pytest

from core.ledger import UnbalancedPosting, post
from core.models import AccountKind, commission_amounts


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
