"""Rendering through locale keys only: every user-facing string comes from the gettext catalogs."""

from __future__ import annotations

import html
from typing import Any

from aiogram.utils.i18n import gettext

from core.models import Order, Product
from core.money import format_amount


def tr(key: str, /, **params: Any) -> str:
    """The current user's translation of ``key`` with ``params`` filled in (HTML-escaped)."""
    text = gettext(key)
    if "{" not in text:
        return text
    return text.format_map(_Params({k: html.escape(str(v)) for k, v in params.items()}))


class _Params(dict[str, str]):
    def __missing__(self, name: str) -> str:  # a placeholder the caller did not fill: show it, never crash
        return "…"


def price(
    product: Product, *, fiat: bool = False, currency: str = "XTR", qty: int = 1, locale: str = "en"
) -> str:
    return (
        format_amount(product.price * qty, currency, locale)
        if fiat
        else format_amount(product.price_stars * qty, "XTR")
    )


def order_status(order: Order) -> str:
    return tr(f"status-{order.status.value}")
