"""The sales chart as a PNG (matplotlib, Agg): revenue and orders per day, and units per product, sized to be
read on a phone. Shared by every channel; the caller passes the labels in the reader's language.

Chinese product names need a CJK font: matplotlib's default (DejaVu Sans) has no CJK glyph and draws boxes.
``cjk_font()`` finds one among the system fonts (Debian: ``apt-get install fonts-noto-cjk``); without one the
chart is still drawn, and the missing glyphs are logged as a warning once per chart.

Rendering is CPU work of a few hundred milliseconds: callers run ``render_sales_chart`` in a worker thread
(``asyncio.to_thread``). Only the object-oriented API is used (a ``Figure`` per chart, never pyplot's
global state); one lock keeps charts from being drawn at the same time, because the warnings filter used to
see missing glyphs is process-wide."""

from __future__ import annotations

import functools
import io
import logging
import threading
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from core.services.reports import SalesReport

log = logging.getLogger(__name__)

# The CJK families tried first, best first; failing those, any installed font that has Chinese glyphs.
PREFERRED_CJK = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Sarasa Gothic SC",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
)
_PROBE = "中文卡密"
_LOCK = threading.Lock()
WIDTH_PX, HEIGHT_PX, DPI = 1080, 1500, 150  # portrait, a phone screen's width


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """What the chart says, in the reader's language (plain text: matplotlib does not parse HTML)."""

    title: str
    revenue: Callable[[str], str]  # the revenue panel's title for a currency code
    orders: str
    units_by_product: str
    no_sales: str


@dataclass(frozen=True, slots=True)
class Chart:
    png: bytes
    missing_glyphs: tuple[str, ...]  # matplotlib's "Glyph ... missing from font(s)" warnings, if any


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None (logged as a warning)."""
    from matplotlib import font_manager

    def installed() -> set[str]:
        return {f.name for f in font_manager.fontManager.ttflist}

    names = installed()
    if not any(n in names for n in PREFERRED_CJK):
        # matplotlib caches the font list when first imported; a font installed since is not in it
        for path in font_manager.findSystemFonts():
            low = path.lower()
            if any(k in low for k in ("cjk", "wqy", "wenquanyi", "sourcehan", "droidsansfallback", "uming")):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    log.debug("font %s could not be read", path)
        names = installed()
    for name in PREFERRED_CJK:
        if name in names:
            return name
    for f in font_manager.fontManager.ttflist:
        if _has_glyphs(f.fname):
            return str(f.name)
    log.warning(
        "no CJK font installed: charts will draw Chinese product names as boxes "
        "(Debian/Ubuntu: apt-get install fonts-noto-cjk)"
    )
    return None


def _has_glyphs(path: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        charmap = FT2Font(path).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(c) in charmap for c in _PROBE)


def render_sales_chart(report: SalesReport, labels: ChartLabels, major: Callable[[int, str], float]) -> Chart:
    """The report's chart. ``major(amount, currency)``: an integer amount in the currency's major unit
    (990 USD cents -> 9.9), for the axes only."""
    with _LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = _draw(report, labels, major)
    missing = tuple(str(w.message) for w in caught if "missing from font" in str(w.message))
    if missing:
        log.warning("chart drawn with missing glyphs (install a CJK font): %s", missing[0])
    return Chart(png, missing)


def _draw(report: SalesReport, labels: ChartLabels, major: Callable[[int, str], float]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    font = cjk_font()
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    currencies = sorted({c for d in report.per_day for c in d.revenue})[:3]
    rows = len(currencies) + 2
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, height_ratios=[1] * (rows - 1) + [1.4])
    with _rc(family):
        fig.suptitle(labels.title, fontsize=13, fontfamily=family)
        days = [d.day.strftime("%m-%d") for d in report.per_day]
        x = list(range(len(days)))
        step = max(1, len(days) // 8)

        def day_axis(ax: object) -> None:
            ax.set_xticks(x[::step], days[::step], fontsize=8)  # type: ignore[attr-defined]
            ax.grid(axis="y", alpha=0.3)  # type: ignore[attr-defined]

        for ax, cur in zip(axes, currencies, strict=False):
            values = [major(d.revenue.get(cur, 0), cur) for d in report.per_day]
            ax.bar(x, values, color="#2e7d32")
            ax.set_title(labels.revenue(cur), fontsize=10, fontfamily=family)
            day_axis(ax)
        orders_ax = axes[len(currencies)]
        orders_ax.plot(x, [d.orders for d in report.per_day], marker="o", color="#1565c0")
        orders_ax.set_ylim(bottom=0)
        orders_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        orders_ax.set_title(labels.orders, fontsize=10, fontfamily=family)
        day_axis(orders_ax)

        products_ax = axes[-1]
        top = list(reversed(report.top))
        if top:
            names = [p.name if len(p.name) <= 16 else p.name[:15] + "…" for p in top]
            products_ax.barh(range(len(top)), [p.units for p in top], color="#ef6c00")
            products_ax.set_yticks(range(len(top)), names, fontsize=9, fontfamily=family)
            products_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            products_ax.set_yticks([])
            products_ax.text(0.5, 0.5, labels.no_sales, ha="center", va="center", fontfamily=family)
        products_ax.set_title(labels.units_by_product, fontsize=10, fontfamily=family)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _rc(family: list[str]) -> AbstractContextManager[Any]:
    from matplotlib import rc_context

    return rc_context({"font.family": "sans-serif", "font.sans-serif": family, "axes.unicode_minus": False})
