"""/stats (owners and admins): the sales of today, the last 7 or the last 30 shop days (``SHOP_TIMEZONE``),
with a button per period and one that sends the period's chart as a photo. The rules behind the figures
are in ``core/services/reports.py``."""

from __future__ import annotations

import asyncio

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from core.models import STARS, DeliveryKind
from core.roles import Power
from core.services import Services
from core.services.reports import SalesReport
from handlers.charts import ChartLabels, render_sales_chart
from handlers.money import exponent, format_amount
from handlers.telegram.admin.common import back_to_menu
from handlers.telegram.admin.filters import Has
from handlers.telegram.ui.callbacks import AdminCb, StatsCb
from handlers.telegram.ui.text import acknowledge, show, tr, tr_plain

STOCK_LINES = 15
_PERIOD_KEYS = {1: "admin-stats-today", 7: "admin-stats-7d", 30: "admin-stats-30d"}


def money_text(amounts: dict[str, int], locale: str, *, sign: str = "") -> str:
    """Amounts per currency on one line, the shop currency first and Stars last (never summed)."""
    if not any(amounts.values()):
        return format_amount(0, next(iter(amounts), STARS), locale) if amounts else "0"
    parts = sorted(amounts.items(), key=lambda kv: (kv[0] == STARS, kv[0]))
    return ", ".join(sign + format_amount(v, cur, locale) for cur, v in parts if v)


def report_text(report: SalesReport, locale: str, timezone: str) -> str:
    period = tr(_PERIOD_KEYS[report.days])
    lines = [
        tr("admin-stats-title", period=period, first=report.first_day, last=report.last_day, tz=timezone),
        tr("admin-stats-revenue", amount=money_text(report.revenue, locale)),
        tr("admin-stats-refunds", count=report.refunds, amount=money_text(report.refunded, locale)),
        tr("admin-stats-net", amount=money_text(report.net, locale)),
        tr("admin-stats-counts", orders=report.orders, units=report.units, buyers=report.new_buyers),
        "",
        tr("admin-stats-top"),
    ]
    lines += [
        tr("admin-stats-top-line", rank=i, name=p.name, units=p.units, amount=money_text(p.revenue, locale))
        for i, p in enumerate(report.top[:5], 1)
    ] or [tr("admin-stats-no-sales")]
    kept = [s for s in report.stock if s.delivery_kind is DeliveryKind.UNIQUE]
    kept.sort(key=lambda s: (not s.is_low, s.available, s.product_id))  # the lowest first
    lines += ["", tr("admin-stats-stock")]
    for s in kept[:STOCK_LINES]:
        key = "admin-stats-stock-line-low" if s.is_low else "admin-stats-stock-line"
        lines.append(tr(key, id=s.product_id, name=s.product_name, available=s.available))
    if len(kept) > STOCK_LINES:
        lines.append(tr("admin-stock-more", count=len(kept) - STOCK_LINES))
    elif not kept:
        lines.append(tr("admin-stock-none"))
    return "\n".join(lines)


def report_markup(days: int) -> InlineKeyboardMarkup:
    periods = [
        InlineKeyboardButton(
            text=("• " if d == days else "") + tr_plain(_PERIOD_KEYS[d]),
            callback_data=StatsCb(days=d).pack(),
        )
        for d in (1, 7, 30)
    ]
    chart = InlineKeyboardButton(
        text=tr_plain("admin-btn-stats-chart"), callback_data=StatsCb(days=days, chart=True).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[periods, [chart], [back_to_menu()]])


async def _screen(event: Message | CallbackQuery, services: Services, locale: str, days: int) -> None:
    report = await services.reports.sales(days)
    tz = services.ctx.config.timezone.key
    await show(event, report_text(report, locale, tz), report_markup(days))


async def stats_command(message: Message, services: Services, locale: str) -> None:
    """Receives: /stats (today's figures; the buttons show other periods and the chart)."""
    await _screen(message, services, locale, 1)


async def stats_menu(query: CallbackQuery, services: Services, locale: str) -> None:
    """Receives: the menu's Reports button."""
    await _screen(query, services, locale, 1)


async def stats_button(query: CallbackQuery, callback_data: StatsCb, services: Services, locale: str) -> None:
    """Receives: a period button (the figures, edited in place) or the chart button (a photo)."""
    if not callback_data.chart:
        await _screen(query, services, locale, callback_data.days)
        return
    await acknowledge(query, tr_plain("admin-stats-chart-wait"))
    report = await services.reports.sales(callback_data.days)
    chart = await asyncio.to_thread(render_sales_chart, report, chart_labels(report), major)
    if query.bot is not None:
        photo = BufferedInputFile(chart.png, filename=f"stats-{report.last_day}-{report.days}d.png")
        caption = tr(
            "admin-stats-chart-caption",
            period=tr(_PERIOD_KEYS[report.days]),
            first=report.first_day,
            last=report.last_day,
        )
        await query.bot.send_photo(query.from_user.id, photo, caption=caption)


def chart_labels(report: SalesReport) -> ChartLabels:
    """The chart's words in the current user's language (its title names the report's period)."""
    return ChartLabels(
        title=tr_plain(
            "admin-stats-chart-title",
            period=tr_plain(_PERIOD_KEYS[report.days]),
            first=report.first_day,
            last=report.last_day,
        ),
        revenue=lambda cur: tr_plain("admin-stats-chart-revenue", currency="Stars" if cur == STARS else cur),
        orders=tr_plain("admin-stats-chart-orders"),
        units_by_product=tr_plain("admin-stats-chart-units"),
        no_sales=tr_plain("admin-stats-no-sales"),
    )


def major(amount: int, currency: str) -> float:
    """An amount in its currency's major unit, for a chart's axes only."""
    return float(amount) / 10 ** exponent(currency)


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.REPORTS))
    router.callback_query.filter(Has(Power.REPORTS))
    router.message.register(stats_command, Command("stats"))
    router.callback_query.register(stats_menu, AdminCb.filter(F.screen == "stats"))
    router.callback_query.register(stats_button, StatsCb.filter())
    return router
