"""What every service needs, built once by the composition root: the database, the vault, the shop's
configuration, the clock, and the registry of reactions to domain events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from core.catalog_cache import CatalogCache
from core.clock import Clock, SystemClock
from core.db import Database
from core.events import EventHandlers
from core.ledger import DEFAULT_HOLD, DEFAULT_RATES_BP, CommissionRules
from core.models import STARS
from core.reactions import shop_reactions
from core.uow import UnitOfWork, run_unit
from core.vault import Vault

__all__ = ["STARS", "Context", "ShopConfig", "UnitOfWork"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ShopConfig:
    currency: str = "USD"  # SHOP_CURRENCY: prices are integer minor units of this
    currency_exponent: int = 2  # one minor unit is 10^-exponent of the currency (USD, CNY: 2; JPY: 0)
    reservation_ttl: timedelta = timedelta(minutes=15)
    # SHOP_TIMEZONE: the day "per day" limits count, and the time buyers read (a membership's end)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    commission_rates: tuple[int, ...] = DEFAULT_RATES_BP  # COMMISSION_RATES, basis points per level
    commission_hold: timedelta = DEFAULT_HOLD  # COMMISSION_HOLD_DAYS
    payout_minimum: int = 1000  # PAYOUT_MINIMUM: the smallest withdrawal, in minor units of ``currency``
    stars_payout_rate: int = 0  # STARS_PAYOUT_RATE: ``currency`` minor units per Star; 0: Stars only spent
    # REMINDER_DAYS: membership reminders, days before the end (then an "expired" notice); (): none at all
    reminder_days: tuple[int, ...] = (3, 1)
    # INVOICE_REMINDER_MINUTES: remind an unpaid order's buyer this long before its reservation runs out;
    # zero, or not shorter than ``reservation_ttl``: no invoice reminders (core.services.reminders)
    invoice_reminder: timedelta = timedelta(minutes=5)
    # ADMIN_IDS: the owners' Telegram user ids (owners are not stored; ``core.admins`` addresses them)
    owner_ids: tuple[str, ...] = ()

    @property
    def commissions(self) -> CommissionRules:
        return CommissionRules(self.commission_rates, self.commission_hold)


@dataclass
class Context:
    db: Database
    vault: Vault
    config: ShopConfig = field(default_factory=ShopConfig)
    clock: Clock = field(default_factory=SystemClock)
    # The shop's reactions (``shop_reactions``, with this configuration's commission rules) unless given.
    events: EventHandlers = field(default=None)  # type: ignore[assignment]
    catalog: CatalogCache = field(default_factory=CatalogCache)  # what the shelf and cards show

    def __post_init__(self) -> None:
        if self.events is None:
            self.events = shop_reactions(self.config.commissions)

    async def write(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """``fn(uow, *args)``: one write transaction, in one trip to the database thread. It commits with
        ``uow.commit()``; whatever it leaves uncommitted (an exception, an early return) rolls back."""
        return await self.db.run(run_unit, self.events, True, self.catalog.stock_changed, fn, args)

    async def read(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """``fn(uow, *args)`` in a read-only transaction (on SQLite never waiting behind the writer)."""
        return await self.db.read(run_unit, self.events, False, None, fn, args)
