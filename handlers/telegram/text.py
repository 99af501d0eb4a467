"""Rendering through locale keys only: every user-facing string comes from the gettext catalogs."""

from __future__ import annotations

import html
from typing import Any

from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
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


async def reply(
    event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Answer a command, or acknowledge a menu button and post the answer as a new message."""
    if isinstance(event, CallbackQuery):
        await event.answer()
        if event.message is not None:
            await event.message.answer(text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)


def pick_locale(language_code: str | None, available: tuple[str, ...] = ("en", "zh_CN")) -> str:
    """Telegram's language_code (an IETF tag such as ``zh-hans`` or ``en-US``) to one of our locales."""
    code = (language_code or "").lower().replace("_", "-")
    if code.startswith("zh") and "zh_CN" in available:
        return "zh_CN"
    return "en"
