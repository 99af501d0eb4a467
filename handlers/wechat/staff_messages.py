"""The admins' periodic messages (payout queue, stock alerts, daily summary) should one be addressed to a
WeChat user. The shop's staff work in Telegram and WeChat users are buyers and distributors, so this is
the rare case; each is still rendered, in plain text (Telegram's texts with their markup taken out, no
chart, no button), and only to who may still read it then, as Telegram's ``digests`` do."""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from core.messages import DailySummary, PayoutQueueDue, StockAlert
from core.models import STARS, Product, StockLevel
from core.roles import Power
from handlers.money import format_amount
from handlers.wechat.parts import split_text

if TYPE_CHECKING:
    from handlers.wechat.messages import Step, WxOutgoing

log = logging.getLogger(__name__)

STOCK_NAMES = 8  # products named per stock line of the summary; the rest are counted


def _tr(out: WxOutgoing, key: str, /, **params: Any) -> str:
    return out.texts.tr_from_html(out.language, key, **params)


def _money(amounts: dict[str, int], locale: str) -> str:
    """Amounts per currency on one line, the shop currency first and Stars last (never summed)."""
    if not any(amounts.values()):
        return format_amount(0, next(iter(amounts), STARS), locale) if amounts else "0"
    parts = sorted(amounts.items(), key=lambda kv: (kv[0] == STARS, kv[0]))
    return ", ".join(format_amount(v, cur, locale) for cur, v in parts if v)


async def _still_told(out: WxOutgoing, power: Power, product: Product | None = None) -> bool:
    """Whether the recipient of an admin's message still holds ``power`` (and, for a product's message,
    a scope covering it); logged when not."""
    item = out.item
    told = await out.services.staff.still_reads(item.channel, item.external_id, power, product)
    if not told:
        log.info("outbox %s (%s): its recipient may no longer read it; not sent", item.id, item.kind)
    return told


async def payout_queue(out: WxOutgoing, m: PayoutQueueDue) -> list[Step]:
    if not await _still_told(out, Power.MONEY):
        return []
    queue = await out.services.payout_run.queue()
    if not queue.requests or queue.oldest is None:
        return []
    tz = out.services.ctx.config.timezone
    text = _tr(
        out,
        "admin-payout-run",
        count=queue.requests,
        amount=_money({t.payout_currency: t.payout_amount for t in queue.to_pay}, out.language),
        id=queue.oldest.id,
        at=queue.oldest.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
    )
    return [text]


async def stock_alert(out: WxOutgoing, m: StockAlert) -> list[Step]:
    product = await out.services.catalog.product(m.product_id)
    if not await _still_told(out, Power.STOCK, product):
        return []
    key = f"admin-stock-alert-{m.level}"
    return [_tr(out, key, id=product.id, name=product.name, available=m.available, threshold=m.threshold)]


async def daily_summary(out: WxOutgoing, m: DailySummary) -> list[Step]:
    """The day's figures as text (WeChat carries no chart), in ≤ 2 KB parts."""
    if not await _still_told(out, Power.REPORTS):
        return []
    s = await out.services.reports.day_summary(date.fromisoformat(m.day))
    f, locale = s.figures, out.language
    lines = [
        _tr(out, "admin-summary-title", day=s.day.isoformat(), tz=out.services.ctx.config.timezone.key),
        _tr(out, "admin-stats-revenue", amount=_money(f.revenue, locale)),
        _tr(out, "admin-stats-refunds", count=f.refunds, amount=_money(f.refunded, locale)),
        _tr(out, "admin-stats-net", amount=_money(f.net, locale)),
        _tr(out, "admin-stats-counts", orders=f.orders, units=f.units, buyers=f.new_buyers),
        _tr(out, "admin-summary-manual", count=s.manual_waiting),
    ]
    if not s.low and not s.out:
        lines.append(_tr(out, "admin-summary-stock-ok"))
    for key, levels in (("admin-summary-low", s.low), ("admin-summary-out", s.out)):
        if levels:
            lines.append(_tr(out, key, count=len(levels)))
            lines += [_stock_item(out, x) for x in levels[:STOCK_NAMES]]
            if len(levels) > STOCK_NAMES:
                lines.append(_tr(out, "admin-stock-more", count=len(levels) - STOCK_NAMES))
    return list(split_text("\n".join(lines)))


def _stock_item(out: WxOutgoing, x: StockLevel) -> str:
    key = "admin-summary-out-line" if x.available <= 0 else "admin-summary-low-line"
    return _tr(out, key, id=x.product_id, name=x.product_name, available=x.available)
