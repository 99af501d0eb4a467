"""The shop's rules: SHOP_CURRENCY, SHOP_TIMEZONE, RESERVATION_TTL_MINUTES, COMMISSION_RATES,
COMMISSION_HOLD_DAYS, PAYOUT_MINIMUM, STARS_PAYOUT_RATE."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import list_currencies
from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings
from core.rates import commission_rates_bp

__all__ = ["ShopSettings", "commission_rates_bp"]


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
