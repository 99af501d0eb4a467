"""Inline keyboards. Labels come from locale keys; routing only ever looks at the typed callback data."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from core.models import Category, DeliveryKind, Order, OrderStatus, Product
from handlers.telegram.callbacks import (
    BuyCb,
    CancelCb,
    CategoryCb,
    LanguageCb,
    MenuCb,
    ProductCb,
    QuantityCb,
    RevealCb,
)
from handlers.telegram.text import price, tr

LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
QUANTITY_CHOICES = (1, 2, 3, 5, 10, 20, 50, 100)


def main_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for action in ("catalog", "orders", "language", "help"):
        kb.button(text=tr(f"menu-{action}"), callback_data=MenuCb(action=action))
    kb.adjust(2)
    return kb.as_markup()


def categories(cats: list[Category]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for c in cats:
        kb.button(text=c.name, callback_data=CategoryCb(category_id=c.id))
    kb.button(text=tr("catalog-all"), callback_data=CategoryCb(category_id=0))
    kb.adjust(1)
    return kb.as_markup()


def products(items: list[tuple[Product, int | None]], *, back_to_categories: bool) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for p, stock in items:
        sold_out = " ❌" if stock == 0 else ""
        kb.button(text=f"{p.name} · {price(p)}{sold_out}", callback_data=ProductCb(product_id=p.id))
    if back_to_categories:
        kb.button(text=tr("button-back"), callback_data=MenuCb(action="catalog"))
    kb.adjust(1)
    return kb.as_markup()


def product_card(
    p: Product, stock: int | None, *, fiat_currency: str | None, locale: str
) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if stock != 0:
        first = p.min_qty
        if p.price_stars > 0:
            label = tr("button-buy-one", price=price(p)) if first == 1 else tr("button-buy-qty", qty=first)
            kb.button(text=label, callback_data=BuyCb(product_id=p.id, qty=first))
        if fiat_currency and p.price > 0:
            label = price(p, fiat=True, currency=fiat_currency, qty=first, locale=locale)
            kb.button(text=f"💳 {label}", callback_data=BuyCb(product_id=p.id, qty=first, fiat=True))
        if p.max_qty > p.min_qty:
            kb.button(text=tr("button-choose-qty"), callback_data=QuantityCb(product_id=p.id))
    kb.button(text=tr("button-back"), callback_data=CategoryCb(category_id=p.category_id or 0))
    kb.adjust(1)
    return kb.as_markup()


def quantities(p: Product, stock: int | None) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    top = p.max_qty if stock is None else min(p.max_qty, stock)
    choices = [q for q in QUANTITY_CHOICES if p.min_qty <= q <= top] or [p.min_qty]
    for q in choices:
        kb.button(text=str(q), callback_data=BuyCb(product_id=p.id, qty=q))
    kb.button(text=tr("button-back"), callback_data=ProductCb(product_id=p.id))
    kb.adjust(4)
    return kb.as_markup()


def orders(items: list[Order]) -> InlineKeyboardMarkup | None:
    kb = InlineKeyboardBuilder()
    for o in items:
        if o.status is OrderStatus.DELIVERED:
            kb.button(text=tr("button-show-keys", ref=o.ref), callback_data=RevealCb(ref=o.ref))
        elif o.status is OrderStatus.PENDING:
            kb.button(text=tr("button-cancel-order", ref=o.ref), callback_data=CancelCb(ref=o.ref))
    kb.adjust(1)
    return kb.as_markup() if kb.buttons else None


def languages() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, name in LANGUAGES.items():
        kb.button(text=name, callback_data=LanguageCb(code=code))
    return kb.as_markup()


def share_phone() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=tr("button-share-phone"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def stock_of(p: Product, available: int) -> int | None:
    """What a buyer is told: a count for unique keys, None ("available") for shared and manual products."""
    return available if p.delivery_kind is DeliveryKind.UNIQUE else None
