"""How the periodic jobs' messages (``core.services.payout_run``, ``stock_alerts``, ``daily_summary``)
reach a Telegram user: a distributor told they can withdraw, an admin told what the payout queue holds,
that a product runs low or out, and the daily summary with its chart. Each is sent in the recipient's
language (the outbox sender sets it); every name interpolated into HTML is escaped by ``tr``.

The texts lead on with a button: /withdraw's flow, the /payouts queue, the /stock screen.

An admin's message is read when it is sent, so it goes only to who may read it then (``_still_told``):
staff taken off, or an operator whose scope no longer covers the product, between the job writing it and
the outbox sending it (a backlog, Telegram away) are told nothing."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import TYPE_CHECKING

from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import get_i18n

from core.messages import DailySummary, PayoutQueueDue, PayoutReady, StockAlert
from core.models import Product, StockLevel
from core.roles import Power
from core.services.reports import DaySummary
from handlers.charts import render_sales_chart
from handlers.money import format_amount
from handlers.telegram.admin.reports import chart_labels, major, money_text
from handlers.telegram.buyer.withdraw import withdraw_button
from handlers.telegram.ui.callbacks import AdminCb, PayoutCb
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, tr, tr_plain, visible

if TYPE_CHECKING:
    from handlers.telegram.workers.messages import Outgoing

log = logging.getLogger(__name__)

CAPTION_MAX = 1024  # a photo's caption, in characters after entities are parsed
STOCK_NAMES = 8  # products named per stock line of the summary; the rest are counted


def _locale() -> str:
    return get_i18n().current_locale


def _one_button(text: str, callback_data: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=text[:BUTTON_TEXT_MAX], callback_data=callback_data)
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def _still_told(out: Outgoing, power: Power, product: Product | None = None) -> bool:
    """Whether the recipient of an admin's message still holds ``power`` (and, for a product's message,
    a scope covering it); logged when not."""
    item = out.item
    told = await out.services.staff.still_reads(item.channel, item.external_id, power, product)
    if not told:
        log.info("outbox %s (%s): its recipient may no longer read it; not sent", item.id, item.kind)
    return told


async def payout_ready(out: Outgoing, m: PayoutReady) -> None:
    """Tell a distributor what they can withdraw, with the button that opens /withdraw."""
    locale = _locale()
    amount = format_amount(m.amount, m.currency, locale)
    if m.currency != m.payout_currency:  # Stars: what they pay, too
        payout = format_amount(m.payout_amount, m.payout_currency, locale)
        amount = tr_plain("withdraw-worth", amount=amount, payout=payout)
    markup = InlineKeyboardMarkup(inline_keyboard=[[withdraw_button()]])
    await out.bot.send_message(out.chat, tr("payout-ready-message", amount=amount), reply_markup=markup)


async def payout_queue(out: Outgoing, m: PayoutQueueDue) -> None:
    """Tell an admin what the payout queue holds now, with the button that opens it; nothing when it has
    been emptied since the run (every request decided: nothing waits)."""
    if not await _still_told(out, Power.MONEY):
        return
    queue = await out.services.payout_run.queue()
    if not queue.requests or queue.oldest is None:
        log.info("outbox %s: the payout queue emptied since run %s; nothing to say", out.item.id, m.slot)
        return
    locale = _locale()
    oldest = queue.oldest
    tz = out.services.ctx.config.timezone
    text = tr(
        "admin-payout-run",
        count=queue.requests,
        amount=money_text({t.payout_currency: t.payout_amount for t in queue.to_pay}, locale),
        id=oldest.id,
        at=oldest.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
    )
    markup = _one_button(tr_plain("admin-payout-run-btn"), PayoutCb(action="list").pack())
    await out.bot.send_message(out.chat, text, reply_markup=markup)


async def stock_alert(out: Outgoing, m: StockAlert) -> None:
    """Tell a stock admin a product ran low or out (a product deleted since: ``ProductNotFound``, which
    the sender takes as nothing left to say)."""
    product = await out.services.catalog.product(m.product_id)
    if not await _still_told(out, Power.STOCK, product):
        return
    text = tr(
        f"admin-stock-alert-{m.level}",
        id=product.id,
        name=product.name,
        available=m.available,
        threshold=m.threshold,
    )
    markup = _one_button(tr_plain("admin-stock-alert-btn"), AdminCb(screen="stock").pack())
    await out.bot.send_message(out.chat, text, reply_markup=markup)


async def daily_summary(out: Outgoing, m: DailySummary) -> None:
    """Yesterday's figures as the caption of the week's sales chart. No button: /stats edits the message
    its button belongs to, and a photo's text cannot be edited."""
    if not await _still_told(out, Power.REPORTS):
        return
    summary = await out.services.reports.day_summary(date.fromisoformat(m.day))
    caption = summary_caption(summary, _locale(), out.services.ctx.config.timezone.key)
    chart = await asyncio.to_thread(render_sales_chart, summary.week, chart_labels(summary.week), major)
    photo = BufferedInputFile(chart.png, filename=f"summary-{m.day}.png")
    await out.bot.send_photo(out.chat, photo, caption=caption)


def summary_caption(s: DaySummary, locale: str, timezone: str) -> str:
    """The summary's text, at most ``CAPTION_MAX`` characters as shown: stock lines name fewer products
    (and count the rest) until it fits."""
    f = s.figures
    head = [
        tr("admin-summary-title", day=s.day.isoformat(), tz=timezone),
        tr("admin-stats-revenue", amount=money_text(f.revenue, locale)),
        tr("admin-stats-refunds", count=f.refunds, amount=money_text(f.refunded, locale)),
        tr("admin-stats-net", amount=money_text(f.net, locale)),
        tr("admin-stats-counts", orders=f.orders, units=f.units, buyers=f.new_buyers),
        tr("admin-summary-manual", count=s.manual_waiting),
    ]
    named = STOCK_NAMES
    while True:
        text = "\n".join(head + _stock_lines(s, named))
        if len(visible(text)) <= CAPTION_MAX or named == 0:
            return text
        named //= 2


def _stock_lines(s: DaySummary, named: int) -> list[str]:
    if not s.low and not s.out:
        return [tr("admin-summary-stock-ok")]
    lines = []
    for key, levels in (("admin-summary-low", s.low), ("admin-summary-out", s.out)):
        if levels:
            lines.append(tr(key, count=len(levels)))
            lines += [_stock_item(x) for x in levels[:named]]
            if len(levels) > named:
                lines.append(tr("admin-stock-more", count=len(levels) - named))
    return lines


def _stock_item(x: StockLevel) -> str:
    key = "admin-summary-out-line" if x.available <= 0 else "admin-summary-low-line"
    return tr(key, id=x.product_id, name=x.product_name, available=x.available)
