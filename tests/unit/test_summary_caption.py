"""The daily summary's caption: every figure in the admin's language, names escaped, and within Telegram's
1024 characters of caption however many products run low."""

from __future__ import annotations

from datetime import date

import pytest

from bot.i18n import build_i18n
from core.models import STARS, DeliveryKind, StockLevel
from core.services.reports import DaySales, DaySummary, SalesReport
from handlers.telegram.ui.text import visible
from handlers.telegram.workers.digests import CAPTION_MAX, summary_caption

DAY = date(2026, 1, 1)


def _report(days: int = 1) -> SalesReport:
    return SalesReport(
        days=days,
        first_day=DAY,
        last_day=DAY,
        orders=3,
        units=4,
        revenue={"USD": 1490, STARS: 70},
        refunds=1,
        refunded={"USD": 300},
        new_buyers=2,
        per_day=[DaySales(DAY, 3, 4, {"USD": 1490, STARS: 70})],
        top=[],
        stock=[],
    )


def _level(i: int, available: int) -> StockLevel:
    name = f"Tom & Jerry <{i}> " + "x" * 44  # 64 characters at most, as a product name
    return StockLevel(i, name[:64], DeliveryKind.UNIQUE, available, 0, 0, 0, 5)


def _summary(low: int, out: int) -> DaySummary:
    return DaySummary(
        day=DAY,
        figures=_report(),
        week=_report(),
        manual_waiting=2,
        low=tuple(_level(i, 3) for i in range(low)),
        out=tuple(_level(100 + i, 0) for i in range(out)),
    )


def _caption(summary: DaySummary, locale: str) -> str:
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(locale):
        return summary_caption(summary, locale, "Asia/Shanghai")


def test_the_caption_gives_every_figure_and_the_stock_that_needs_a_hand_in_english() -> None:
    text = _caption(_summary(low=1, out=1), "en")
    assert "Daily summary: 2026-01-01</b> (Asia/Shanghai)" in text
    assert "Revenue: $14.90, 70 ⭐" in text and "Refunds: 1 ($3.00)" in text
    assert "Orders: 3 · Units: 4 · New buyers: 2" in text and "Manual orders waiting now: 2" in text
    assert "Tom &amp; Jerry &lt;0&gt;" in text and "3 left" in text and "Out of stock now (1)" in text


def test_the_caption_speaks_chinese_to_a_chinese_admin() -> None:
    text = _caption(_summary(low=0, out=0), "zh_CN")
    assert "每日汇总：2026-01-01" in text and "销售额：" in text and "新买家：2" in text
    assert "没有商品库存不足或售罄" in text


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_the_caption_fits_telegrams_limit_however_many_products_run_low(locale: str) -> None:
    text = _caption(_summary(low=40, out=40), locale)
    shown = visible(text)
    assert len(shown) <= CAPTION_MAX
    assert "40" in shown  # the counts remain when names had to go
