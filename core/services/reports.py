"""Sales reports: what the shop sold over its last 1, 7 or 30 days, in the shop's time zone.

The rules, as the owner reads them:

- **A day is the shop's day**: from midnight to midnight in ``SHOP_TIMEZONE``, never UTC's. "Today" is
  today there; "7 days" is today and the six days before it.
- **A sale counts on the day it was paid** (``paid_at``): orders, units and revenue are those of the
  orders paid in the period, refunded since or not, so a day's figures never change when a later refund
  comes.
- **A refund counts on the day it was decided** (the order became ``refund_due``): the refunds line is
  those orders, with what they had cost; **net revenue** is revenue less those refunds, per currency (a
  refund of an older order can make a day's net negative).
- **New buyers** are people whose first paid order falls in the period.
- Money stays integers per currency (the shop currency's minor units, Stars): never summed across
  currencies, never converted.

The daily summary (``day_summary``) gives one past day by these rules, the seven days ending with it for
its chart, and what needs a hand now: paid manual orders waiting for an admin, products low or out of stock
(``core.services.stock_alerts.stock_level``, active unique-key products).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.context import Context, UnitOfWork
from core.errors import InvalidInput
from core.messages import STOCK_LOW, STOCK_OUT
from core.models import DeliveryKind, KeyStatus, StockLevel
from core.services.stock_alerts import stock_level

PERIODS = (1, 7, 30)  # the days a report may cover
SUMMARY_CHART_DAYS = 7  # the daily summary's chart: the week ending with its day
TOP_PRODUCTS = 10


@dataclass(frozen=True, slots=True)
class DaySales:
    day: date
    orders: int = 0
    units: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> amount


@dataclass(frozen=True, slots=True)
class ProductSales:
    product_id: int
    name: str
    orders: int
    units: int
    revenue: dict[str, int]


@dataclass(frozen=True, slots=True)
class SalesReport:
    days: int
    first_day: date
    last_day: date
    orders: int
    units: int
    revenue: dict[str, int]
    refunds: int
    refunded: dict[str, int]
    new_buyers: int
    per_day: list[DaySales]
    top: list[ProductSales]  # best sellers by units, at most TOP_PRODUCTS
    stock: list[StockLevel]  # every product, now

    @property
    def net(self) -> dict[str, int]:
        """Revenue less refunds, per currency."""
        out = dict(self.revenue)
        for cur, amount in self.refunded.items():
            out[cur] = out.get(cur, 0) - amount
        return out


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One shop day's figures for the daily summary, and what needs a hand now."""

    day: date
    figures: SalesReport  # that day alone
    week: SalesReport  # the SUMMARY_CHART_DAYS days ending with it (its chart)
    manual_waiting: int  # paid manual-delivery orders waiting for an admin, now
    low: tuple[StockLevel, ...]  # active unique-key products at or under their threshold, some left, now
    out: tuple[StockLevel, ...]  # active unique-key products with none left, now


def day_starts(today: date, days: int, tz: ZoneInfo) -> list[datetime]:
    """The instants (aware, in ``tz``) at which each of the last ``days`` days up to ``today`` began, and
    the next day's start: ``days + 1`` boundaries."""
    first = today - timedelta(days=days - 1)
    return [datetime.combine(first + timedelta(days=i), time(0), tzinfo=tz) for i in range(days + 1)]


class ReportService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def sales(self, days: int) -> SalesReport:
        """The report of the last ``days`` shop days (1: today)."""
        if days not in PERIODS:
            raise InvalidInput(f"a report covers one of {PERIODS} days", field="days")
        tz = self.ctx.config.timezone
        now = self.ctx.clock.now()
        bounds = day_starts(now.astimezone(tz).date(), days, tz)
        return await self.ctx.read(_sales, bounds)

    async def day_summary(self, day: date) -> DaySummary:
        """The daily summary of the shop day ``day`` (in ``SHOP_TIMEZONE``), read in one transaction."""
        tz = self.ctx.config.timezone
        return await self.ctx.read(
            _day_summary, day, day_starts(day, 1, tz), day_starts(day, SUMMARY_CHART_DAYS, tz)
        )


def _day_summary(uow: UnitOfWork, day: date, one: list[datetime], week: list[datetime]) -> DaySummary:
    figures, chart = _sales(uow, one), _sales(uow, week)
    active = {p.id for p in uow.repo.catalog.products(active_only=True)}
    watched = [s for s in figures.stock if s.product_id in active and s.delivery_kind is DeliveryKind.UNIQUE]
    levels = [(stock_level(s.available, s.low_stock_threshold), s) for s in watched]
    return DaySummary(
        day=day,
        figures=figures,
        week=chart,
        manual_waiting=uow.repo.reports.awaiting_manual(),
        low=tuple(s for level, s in levels if level == STOCK_LOW),
        out=tuple(s for level, s in levels if level == STOCK_OUT),
    )


def _sales(uow: UnitOfWork, bounds: list[datetime]) -> SalesReport:
    r = uow.repo
    start, end = bounds[0], bounds[-1]
    products = {p.id: p for p in r.catalog.products(active_only=False)}
    per_day = [DaySales(b.date()) for b in bounds[:-1]]
    by_product: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # orders, units
    product_revenue: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    revenue: dict[str, int] = defaultdict(int)
    orders = units = 0
    for row in r.reports.sales(bounds[:-1], end):
        d = per_day[row.day]
        d.revenue[row.currency] = d.revenue.get(row.currency, 0) + row.amount
        per_day[row.day] = DaySales(d.day, d.orders + row.orders, d.units + row.units, d.revenue)
        by_product[row.product_id][0] += row.orders
        by_product[row.product_id][1] += row.units
        product_revenue[row.product_id][row.currency] += row.amount
        revenue[row.currency] += row.amount
        orders += row.orders
        units += row.units
    top = sorted(by_product.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))[:TOP_PRODUCTS]
    refunds = r.reports.refunds(start, end)
    counts = {(c.product_id, c.status): c.count for c in r.keys.count_by_status()}
    stock = [
        StockLevel(
            product_id=p.id,
            product_name=p.name,
            delivery_kind=p.delivery_kind,
            available=counts.get((p.id, KeyStatus.AVAILABLE), 0),
            reserved=counts.get((p.id, KeyStatus.RESERVED), 0),
            sold=counts.get((p.id, KeyStatus.SOLD), 0),
            void=counts.get((p.id, KeyStatus.VOID), 0),
            low_stock_threshold=p.low_stock_threshold,
        )
        for p in products.values()
    ]
    return SalesReport(
        days=len(per_day),
        first_day=per_day[0].day,
        last_day=per_day[-1].day,
        orders=orders,
        units=units,
        revenue=dict(revenue),
        refunds=sum(x.orders for x in refunds),
        refunded={x.currency: x.amount for x in refunds},
        new_buyers=r.reports.new_buyers(start, end),
        per_day=per_day,
        top=[
            ProductSales(
                pid,
                products[pid].name if pid in products else f"#{pid}",
                n[0],
                n[1],
                dict(product_revenue[pid]),
            )
            for pid, n in top
        ],
        stock=stock,
    )
