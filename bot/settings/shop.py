"""The shop's rules: SHOP_CURRENCY, SHOP_TIMEZONE, RESERVATION_TTL_MINUTES, COMMISSION_RATES,
COMMISSION_HOLD_DAYS, PAYOUT_MINIMUM, STARS_PAYOUT_RATE, REMINDER_DAYS, INVOICE_REMINDER_MINUTES."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import list_currencies
from pydantic import Field, field_validator

from bot.settings.base import ConcernSettings
from core.rates import commission_rates_bp

__all__ = ["ShopSettings", "commission_rates_bp", "reminder_days"]

MAX_REMINDERS = 5  # stages before a membership ends; more is nagging
MAX_REMINDER_DAY = 90  # the earliest reminder, in days before the end
_DAY = re.compile(r"[1-9][0-9]{0,2}")  # plain ASCII digits: no "０３", "+3", "3.5"


def reminder_days(text: str) -> tuple[int, ...]:
    """``"3,1"`` -> ``(3, 1)``: the days before a membership ends on which its buyer is reminded, latest
    first; ``""``: no membership reminders. Raises ValueError naming what is wrong."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if len(parts) > MAX_REMINDERS:
        raise ValueError(f"at most {MAX_REMINDERS} days, e.g. 7,3,1")
    days: list[int] = []
    for part in parts:
        if not _DAY.fullmatch(part) or not 1 <= int(part) <= MAX_REMINDER_DAY:
            raise ValueError(f"each day must be a whole number from 1 to {MAX_REMINDER_DAY}, e.g. 3,1")
        days.append(int(part))
    if len(set(days)) != len(days):
        raise ValueError("each day may appear once, e.g. 3,1")
    return tuple(sorted(days, reverse=True))


class ShopSettings(ConcernSettings):
    shop_currency: str = Field("USD", description="ISO 4217 currency of prices; Stars are separate.")
    shop_timezone: str = Field(
        "UTC", description="IANA time zone of per-day limits, reports and the times buyers read."
    )
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

    reminder_days: str = Field(
        "3,1",
        description="Days before a membership code ends on which its buyer is reminded (then an expired "
        f"notice); up to {MAX_REMINDERS} days from 1 to {MAX_REMINDER_DAY}, empty: no reminders.",
    )
    invoice_reminder_minutes: int = Field(
        5,
        ge=0,
        le=24 * 60,
        description="Remind a buyer this many minutes before their unpaid order's reservation runs out; 0: "
        "never. Only when shorter than RESERVATION_TTL_MINUTES (else no invoice reminders).",
    )

    @field_validator("reminder_days")
    @classmethod
    def _check_reminder_days(cls, v: str) -> str:
        reminder_days(v)
        return v.strip()

    @property
    def reminder_days_tuple(self) -> tuple[int, ...]:
        return reminder_days(self.reminder_days)

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
