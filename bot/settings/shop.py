"""The shop's rules: SHOP_CURRENCY, SHOP_TIMEZONE, RESERVATION_TTL_MINUTES, COMMISSION_RATES,
COMMISSION_HOLD_DAYS, PAYOUT_MINIMUM, STARS_PAYOUT_RATE."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import list_currencies
from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings


class ShopSettings(ConcernSettings):
    shop_currency: str = Field("USD", description="ISO 4217 currency of prices; Stars are separate.")
    shop_timezone: str = Field("UTC", description="IANA time zone in which per-day limits reset.")
    reservation_ttl_minutes: int = Field(
        15, ge=1, le=24 * 60, description="How long checkout holds stock for an unpaid order."
    )
    commission_rates: str = Field(
        "10,5",
        description="Commission percent per level: the buyer's referrer, then theirs (at most 2 decimals).",
    )
    commission_hold_days: int = Field(
        7, ge=0, le=365, description="Days a commission stays pending (a refund reverses it) before settling."
    )
    payout_minimum: int = Field(
        1000,
        ge=1,
        le=10**15,
        description="The smallest withdrawal of commission, in minor units of SHOP_CURRENCY (1000 = 10.00).",
    )
    stars_payout_rate: int = Field(
        0,
        ge=0,
        le=10**6,
        description="SHOP_CURRENCY minor units paid per Star withdrawn; 0: Stars commission is only spent.",
    )

    @field_validator("commission_rates")
    @classmethod
    def _check_rates(cls, v: str) -> str:
        commission_rates_bp(v)
        return v.strip()

    @property
    def commission_rates_bp(self) -> tuple[int, ...]:
        return commission_rates_bp(self.commission_rates)

    @field_validator("shop_currency")
    @classmethod
    def _check_currency(cls, v: str) -> str:
        v = v.strip().upper()
        if v not in list_currencies() or v == "XTR":
            raise ValueError("must be an ISO 4217 currency code such as USD, EUR or CNY")
        return v

    @field_validator("shop_timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Asia/Shanghai") from None
        return v


MAX_COMMISSION_LEVELS = 2


def commission_rates_bp(text: str) -> tuple[int, ...]:
    """``"10,5"`` -> ``(1000, 500)``: percent per level as basis points. Refuses more than two levels,
    more than two decimals, negatives, and rates adding up to more than 100 %."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not 1 <= len(parts) <= MAX_COMMISSION_LEVELS:
        raise ValueError("must be one or two percentages separated by a comma, such as 10,5")
    out: list[int] = []
    for part in parts:
        try:
            value = Decimal(part)
        except InvalidOperation:
            raise ValueError(f"{part!r} is not a percentage") from None
        bp = value * 100
        if not value.is_finite() or bp != bp.to_integral_value() or not 0 <= value <= 100:
            raise ValueError(f"{part!r}: a percentage from 0 to 100 with at most 2 decimals")
        out.append(int(bp))
    if sum(out) > 10_000:
        raise ValueError("the levels add up to more than 100 %")
    return tuple(out)
