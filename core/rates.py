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
