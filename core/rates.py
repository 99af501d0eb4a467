"""Commission rates: percent per level as people type them (``COMMISSION_RATES``, an admin's override for
one distributor) read into basis points, shown back, and which rate a commission is paid at.

Rates are basis points per level (``1000`` = 10 %), level 1 first (the buyer's referrer), never floats.

Which rate applies (``commission_rate``): for the level a distributor earns at, the first of these that
lists that level: the product's override, the earning distributor's override, ``COMMISSION_RATES``; a level
none lists pays nothing. An override replaces the shop's rates level by level: ``15`` raises level 1 and
leaves level 2 as ``COMMISSION_RATES`` says (``15,0`` to pay nothing at level 2)."""

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


def commission_rate(
    level: int, default: Rates, *, distributor: Rates | None = None, product: Rates | None = None
) -> int:
    """The rate (basis points) of a level-``level`` commission: the product's override, else the earning
    distributor's, else ``default`` (``COMMISSION_RATES``), whichever first lists that level; 0 if none
    does. None: no override."""
    for rates in (product, distributor, default):
        if rates is not None and 1 <= level <= len(rates):
            return rates[level - 1]
    return 0
