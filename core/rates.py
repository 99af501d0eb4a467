"""Commission rates: percent per level as people type them (``COMMISSION_RATES``, an admin's override for
one distributor) read into basis points, shown back, and which rate a commission is paid at.

Rates are basis points per level (``1000`` = 10 %), level 1 first (the buyer's referrer), never floats.

Which rate applies is ``core.ledger.rates_for``: the product's own rates if it has them, else the earning
distributor's override, else ``COMMISSION_RATES``; the first that is set decides every level, and a level it
lists no rate for pays nothing (a product's ``0``: no commission on it; a distributor's ``15``: 15 % when
they earn at level 1, nothing at level 2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from core.errors import InvalidRates, RateNotAPercentage, RatesOverWhole

MAX_COMMISSION_LEVELS = 2  # the buyer's referrer, and theirs
WHOLE_BP = 10_000  # 100 %
Rates = tuple[int, ...]
_PERCENT = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")  # 0 to 999, at most 2 decimals


def parse_rates(text: str) -> Rates:
    """``"10,5"`` -> ``(1000, 500)``: percent per level as basis points. Refuses (``InvalidRates``) more
    than two levels or none, more than two decimals, negatives or more than 100, and levels adding up to
    more than 100 %."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not 1 <= len(parts) <= MAX_COMMISSION_LEVELS:
        raise InvalidRates()
    out: list[int] = []
    for part in parts:
        if not _PERCENT.fullmatch(part):  # plain ASCII digits: no "１２", "1e3", "NaN" or "+5"
            raise RateNotAPercentage(value=part[:16])
        value = Decimal(part)
        if not value <= 100:
            raise RateNotAPercentage(value=part[:16])
        out.append(int(value * 100))
    if sum(out) > WHOLE_BP:
        raise RatesOverWhole()
    return tuple(out)


def format_rates(rates: Sequence[int]) -> str:
    """``(1200, 650)`` -> ``"12,6.5"``: what ``parse_rates`` reads back to the same rates."""
    return ",".join(_percent(bp) for bp in rates)


def _percent(bp: int) -> str:
    text = f"{Decimal(bp) / 100:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def commission_rates_bp(text: str) -> tuple[int, ...]:
    """``"10,5"`` -> ``(1000, 500)``: percent per level as basis points (COMMISSION_RATES, a product's
    rates) by ``core.rates.parse_rates`` (which a distributor's override goes through too), refused with a
    ``ValueError`` in words fit for a settings error."""
    try:
        return parse_rates(text)
    except InvalidRates as e:
        raise ValueError(str(e)) from None


def checked_rates(rates_bp: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """Basis points per level as a tuple, if they are rates a shop can pay: one or two levels, each a
    whole number from 0 to 10000, together at most 100 % (else ``ValueError``)."""
    out = tuple(rates_bp)
    if not 1 <= len(out) <= MAX_COMMISSION_LEVELS:
        raise ValueError("must be one or two percentages separated by a comma, such as 10,5")
    if any(type(r) is not int or not 0 <= r <= WHOLE_BP for r in out):
        raise ValueError("each level is a percentage from 0 to 100 with at most 2 decimals")
    if sum(out) > WHOLE_BP:
        raise ValueError("the levels add up to more than 100 %")
    return out
