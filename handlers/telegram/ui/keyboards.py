"""Inline keyboards. Labels come from locale keys; routing only ever looks at the typed callback data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from core.models import STARS, Category, DeliveryKind, Order, OrderStatus, Product
from core.services.catalog import invoice_max, largest_qty
from handlers.money import exponent
from handlers.telegram.ui.callbacks import (
    BuyCb,
    CancelCb,
    CatalogCb,
    CategoryCb,
    LanguageCb,
    MenuCb,
    ProductCb,
    QuantityCb,
    RevealCb,
)
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, clip, price, tr_plain

# Button texts are plain text (Telegram does not parse them): rendered with tr_plain, never escaped.
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
QUANTITY_CHOICES = (1, 2, 3, 5, 10, 20, 50, 100)
# Telegram refuses an inline keyboard of more than 100 buttons or more than 8 in a row; a page of the
# catalog stays well below with its navigation row and the Back button.
PAGE_SIZE = 30
MAX_BUTTONS, MAX_PER_ROW = 100, 8

T = TypeVar("T")


def page_of(items: Sequence[T], page: int) -> tuple[Sequence[T], int, int]:
    """The items on ``page`` (clamped to the last page), that page and the number of pages."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    return items[page * PAGE_SIZE : (page + 1) * PAGE_SIZE], page, pages


def _nav(page: int, pages: int, to: Callable[[int], CallbackData]) -> list[InlineKeyboardButton]:
    """◀️ 2/5 ▶️: tapping the indicator shows the same page again (no edit is made)."""
    row = []
    if page > 0:
        row.append(InlineKeyboardButton(text="◀️", callback_data=to(page - 1).pack()))
    row.append(InlineKeyboardButton(text=f"{page + 1}/{pages}", callback_data=to(page).pack()))
    if page < pages - 1:
        row.append(InlineKeyboardButton(text="▶️", callback_data=to(page + 1).pack()))
    return row


def main_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for action in ("catalog", "orders", "language", "help"):
        kb.button(text=tr_plain(f"menu-{action}"), callback_data=MenuCb(action=action))
    kb.adjust(2)
    return kb.as_markup()


def categories(cats: Sequence[Category], page: int = 0) -> InlineKeyboardMarkup:
    shown, page, pages = page_of(cats, page)
    kb = InlineKeyboardBuilder()
    for c in shown:
        kb.button(text=clip(c.name, BUTTON_TEXT_MAX), callback_data=CategoryCb(category_id=c.id))
    kb.button(text=tr_plain("catalog-all"), callback_data=CategoryCb(category_id=0))
    kb.adjust(1)
    if pages > 1:
        kb.row(*_nav(page, pages, lambda n: CatalogCb(page=n)))
    return kb.as_markup()


def products(
    items: Sequence[tuple[Product, int | None]],
    *,
    back_to_categories: bool,
    category_id: int = 0,
    page: int = 0,
) -> InlineKeyboardMarkup:
    shown, page, pages = page_of(items, page)
    kb = InlineKeyboardBuilder()
    for p, stock in shown:
        sold_out = " ❌" if stock == 0 else ""
        label = f"{clip(p.name, BUTTON_TEXT_MAX - 16)} · {price(p)}{sold_out}"
        kb.button(text=label, callback_data=ProductCb(product_id=p.id))
    kb.adjust(1)
    if pages > 1:
        kb.row(*_nav(page, pages, lambda n: CategoryCb(category_id=category_id, page=n)))
    if back_to_categories:
        kb.row(InlineKeyboardButton(text=tr_plain("button-back"), callback_data=CatalogCb().pack()))
    return kb.as_markup()


def product_card(
    p: Product, stock: int | None, *, fiat_currency: str | None, locale: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if stock != 0:
        first = p.min_qty
        if p.price_stars > 0 and p.price_stars * first <= invoice_max(STARS):  # (saved before the rule)
            label = (
                tr_plain("button-buy-one", price=price(p))
                if first == 1
                else tr_plain("button-buy-qty", qty=first)
            )
            kb.button(text=label, callback_data=BuyCb(product_id=p.id, qty=first))
        if fiat_currency and 0 < p.price * first <= invoice_max(fiat_currency, exponent(fiat_currency)):
            label = price(p, fiat=True, currency=fiat_currency, qty=first, locale=locale)
            kb.button(text=f"💳 {label}", callback_data=BuyCb(product_id=p.id, qty=first, fiat=True))
        if largest_qty(p) > p.min_qty:
            kb.button(text=tr_plain("button-choose-qty"), callback_data=QuantityCb(product_id=p.id))
    kb.button(text=tr_plain("button-back"), callback_data=CategoryCb(category_id=p.category_id or 0))
    kb.adjust(1)
    return kb.as_markup()


def back_to_category(category_id: int | None) -> InlineKeyboardMarkup:
    """Only « Back, to the category a product is in (for a product no longer on sale)."""
    kb = InlineKeyboardBuilder()
    kb.button(text=tr_plain("button-back"), callback_data=CategoryCb(category_id=category_id or 0))
    return kb.as_markup()


def quantities(p: Product, stock: int | None) -> InlineKeyboardMarkup:
    """Stars quantities the product's limits and stock allow, and Telegram: price × quantity stays within
    one invoice's maximum."""
    kb = InlineKeyboardBuilder()
    top = largest_qty(p) if stock is None else min(largest_qty(p), stock)
    choices = [q for q in QUANTITY_CHOICES if p.min_qty <= q <= top] or [p.min_qty]
    for q in choices:
        kb.button(text=str(q), callback_data=BuyCb(product_id=p.id, qty=q))
    kb.button(text=tr_plain("button-back"), callback_data=ProductCb(product_id=p.id))
    kb.adjust(4)
    return kb.as_markup()


def orders(items: list[Order]) -> InlineKeyboardMarkup | None:
    kb = InlineKeyboardBuilder()
    for o in items:
        if o.status is OrderStatus.DELIVERED:
            kb.button(text=tr_plain("button-show-keys", ref=o.ref), callback_data=RevealCb(ref=o.ref))
        elif o.status is OrderStatus.PENDING:
            kb.button(text=tr_plain("button-cancel-order", ref=o.ref), callback_data=CancelCb(ref=o.ref))
    kb.adjust(1)
    return kb.as_markup() if kb.buttons else None


def languages() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, name in LANGUAGES.items():
        kb.button(text=name, callback_data=LanguageCb(code=code))
    return kb.as_markup()


def share_phone() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=tr_plain("button-share-phone"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def stock_of(p: Product, available: int) -> int | None:
    """What a buyer is told: a count for unique keys, None ("available") for shared and manual products."""
    return available if p.delivery_kind is DeliveryKind.UNIQUE else None
