"""What every service needs, built once by the composition root: the database, the vault, the shop's
configuration, the clock, and the registry of reactions to domain events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, SystemClock
from core.db import Database
from core.events import EventHandlers
from core.models import STARS
from core.reactions import shop_reactions
from core.uow import UnitOfWork
from core.vault import Vault

__all__ = ["STARS", "Context", "ShopConfig"]


@dataclass(frozen=True, slots=True)
class ShopConfig:
    currency: str = "USD"  # SHOP_CURRENCY: prices are integer minor units of this
    currency_exponent: int = 2  # one minor unit is 10^-exponent of the currency (USD, CNY: 2; JPY: 0)
    reservation_ttl: timedelta = timedelta(minutes=15)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # for "per day" limits


@dataclass
class Context:
    db: Database
    vault: Vault
    config: ShopConfig = field(default_factory=ShopConfig)
    clock: Clock = field(default_factory=SystemClock)
    events: EventHandlers = field(default_factory=shop_reactions)

    def uow(self, *, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.db, write=write, events=self.events)
