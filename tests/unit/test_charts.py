"""The sales chart: a PNG a phone shows whole, with Chinese product names drawn in a font that has them."""

from __future__ import annotations

import io
import struct
import warnings
from datetime import date, timedelta

import pytest

from core.services.reports import DaySales, ProductSales, SalesReport
from handlers.charts import HEIGHT_PX, WIDTH_PX, ChartLabels, cjk_font, render_sales_chart

NAMES = ["网飞会员 月卡", "腾讯视频VIP年卡", "爱奇艺黄金会员", "Steam 10"]
CJK = cjk_font()
needs_cjk = pytest.mark.skipif(
    CJK is None, reason="no CJK font installed (Debian/Ubuntu: apt-get install fonts-noto-cjk; .ci/run does)"
)


def report(days: int = 7, *, sales: bool = True) -> SalesReport:
    first = date(2026, 1, 1)
    per_day = [
        DaySales(
            first + timedelta(days=i), i % 3, i % 4, {"XTR": 50 * i, "USD": 990 * (i % 2)} if sales else {}
        )
        for i in range(days)
    ]
    top = [ProductSales(i + 1, n, 2, 9 - i, {"XTR": 100}) for i, n in enumerate(NAMES)] if sales else []
    return SalesReport(days, per_day[0].day, per_day[-1].day, 9, 12, {}, 0, {}, 1, per_day, top, [])


def labels() -> ChartLabels:
    return ChartLabels(
        "销售报表：近 7 天", lambda c: f"每日销售额（{c}）", "每日订单数", "各商品销量", "暂无销售"
    )


def major(amount: int, currency: str) -> float:
    return amount / 100 if currency == "USD" else float(amount)


@needs_cjk
def test_chinese_product_names_and_labels_are_drawn_with_no_missing_glyph() -> None:
    chart = render_sales_chart(report(), labels(), major)
    assert chart.missing_glyphs == ()


@needs_cjk
def test_the_font_found_has_the_glyphs_matplotlib_needs_for_chinese_text() -> None:
    # matplotlib itself, without our helper: drawing Chinese in the font found warns of no missing glyph
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.1, 0.5, "".join(NAMES) + "卡密库存销售额", fontfamily=CJK)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    assert not [w for w in caught if "missing from font" in str(w.message)]


def test_without_a_cjk_font_the_boxes_are_reported_not_hidden() -> None:
    # DejaVu Sans, matplotlib's own font, has no Chinese: the warning our helper collects is real
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.1, 0.5, "卡密", fontfamily="DejaVu Sans")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    assert any("missing from font" in str(w.message) for w in caught)


@pytest.mark.parametrize("days", [1, 7, 30])
def test_the_chart_is_a_portrait_png_of_a_phones_width_and_a_sane_size(days: int) -> None:
    png = render_sales_chart(report(days), labels(), major).png
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (WIDTH_PX, HEIGHT_PX)
    assert 10_000 < len(png) < 2_000_000


def test_a_period_without_sales_still_draws_a_chart() -> None:
    assert render_sales_chart(report(sales=False), labels(), major).png[:4] == b"\x89PNG"
