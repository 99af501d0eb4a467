"""Application services: each public method is one transaction through a unit of work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock, SystemClock
from core.db import Database
from core.uow import UnitOfWork
from core.vault import Vault

STARS = "XTR"  # Telegram Stars: the ISO-4217-style code Telegram uses


@dataclass(frozen=True, slots=True)
class ShopConfig:
    currency: str = "USD"  # SHOP_CURRENCY: prices are integer minor units of this
    reservation_ttl: timedelta = timedelta(minutes=15)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))  # for "per day" limits


@dataclass
class Context:
    """What every service needs; built once by the composition root."""

    db: Database
    vault: Vault
    config: ShopConfig = field(default_factory=ShopConfig)
    clock: Clock = field(default_factory=SystemClock)

    def uow(self, *, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.db, write=write)


class Services:
    """The services a channel calls, as one object to hand to handlers via workflow data."""

    def __init__(self, ctx: Context) -> None:
        from core.services.catalog import CatalogService
        from core.services.cursors import CursorService
        from core.services.orders import OrderService
        from core.services.outbox import OutboxService
        from core.services.payments import PaymentService
        from core.services.refunds import RefundService
        from core.services.stock import StockService
        from core.services.users import UserService

        self.ctx = ctx
        self.catalog = CatalogService(ctx)
        self.users = UserService(ctx)
        self.stock = StockService(ctx)
        self.payments = PaymentService(ctx)
        self.refunds = RefundService(ctx)
        self.orders = OrderService(ctx, payments=self.payments, refunds=self.refunds)
        self.outbox = OutboxService(ctx)
        self.cursors = CursorService(ctx)
