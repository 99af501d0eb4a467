"""Inline keyboards. Labels come from locale keys; routing only ever looks at the typed callback data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

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
    PayBalanceCb,
    ProductCb,
    QuantityCb,
    RenewCb,
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


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _grid(buttons: Sequence[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    """``buttons`` in rows of ``width``. (Built by hand rather than with aiogram's InlineKeyboardBuilder:
    its ``as_markup`` deep-copies every button, which cost a buyer's tap more than the rest of its card.)"""
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def _markup(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup:
    assert sum(map(len, rows)) <= MAX_BUTTONS and all(len(r) <= MAX_PER_ROW for r in rows)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _nav(page: int, pages: int, to: Callable[[int], CallbackData]) -> list[InlineKeyboardButton]:
    """◀️ 2/5 ▶️: tapping the indicator shows the same page again (no edit is made)."""
    row = []
    if page > 0:
        row.append(_button("◀️", to(page - 1)))
    row.append(_button(f"{page + 1}/{pages}", to(page)))
    if page < pages - 1:
        row.append(_button("▶️", to(page + 1)))
    return row


def main_menu() -> InlineKeyboardMarkup:
    buttons = [
        _button(tr_plain(f"menu-{action}"), MenuCb(action=action))
        for action in ("catalog", "orders", "language", "help")
    ]
    return _markup(_grid(buttons, 2))


def categories(cats: Sequence[Category], page: int = 0) -> InlineKeyboardMarkup:
    shown, page, pages = page_of(cats, page)
    buttons = [_button(clip(c.name, BUTTON_TEXT_MAX), CategoryCb(category_id=c.id)) for c in shown]
    buttons.append(_button(tr_plain("catalog-all"), CategoryCb(category_id=0)))
    rows = _grid(buttons, 1)
    if pages > 1:
        rows.append(_nav(page, pages, lambda n: CatalogCb(page=n)))
    return _markup(rows)


def products(
    items: Sequence[tuple[Product, int | None]],
    *,
    back_to_categories: bool,
    category_id: int = 0,
    page: int = 0,
) -> InlineKeyboardMarkup:
    shown, page, pages = page_of(items, page)
    buttons = []
    for p, stock in shown:
        sold_out = " ❌" if stock == 0 else ""
        label = f"{clip(p.name, BUTTON_TEXT_MAX - 16)} · {price(p)}{sold_out}"
        buttons.append(_button(label, ProductCb(product_id=p.id)))
    rows = _grid(buttons, 1)
    if pages > 1:
        rows.append(_nav(page, pages, lambda n: CategoryCb(category_id=category_id, page=n)))
    if back_to_categories:
        rows.append([_button(tr_plain("button-back"), CatalogCb())])
    return _markup(rows)


def product_card(
    p: Product, stock: int | None, *, fiat_currency: str | None, locale: str
) -> InlineKeyboardMarkup:
    buttons = []
    if stock != 0:
        first = p.min_qty
        if p.price_stars > 0 and p.price_stars * first <= invoice_max(STARS):  # (saved before the rule)
            label = (
                tr_plain("button-buy-one", price=price(p))
                if first == 1
                else tr_plain("button-buy-qty", qty=first)
            )
            buttons.append(_button(label, BuyCb(product_id=p.id, qty=first)))
        if fiat_currency and 0 < p.price * first <= invoice_max(fiat_currency, exponent(fiat_currency)):
            label = price(p, fiat=True, currency=fiat_currency, qty=first, locale=locale)
            buttons.append(_button(f"💳 {label}", BuyCb(product_id=p.id, qty=first, fiat=True)))
        if largest_qty(p) > p.min_qty:
            buttons.append(_button(tr_plain("button-choose-qty"), QuantityCb(product_id=p.id)))
    buttons.append(_button(tr_plain("button-back"), CategoryCb(category_id=p.category_id or 0)))
    return _markup(_grid(buttons, 1))


def back_to_category(category_id: int | None) -> InlineKeyboardMarkup:
    """Only « Back, to the category a product is in (for a product no longer on sale)."""
    return _markup([[_button(tr_plain("button-back"), CategoryCb(category_id=category_id or 0))]])


def quantities(p: Product, stock: int | None) -> InlineKeyboardMarkup:
    """Stars quantities the product's limits and stock allow, and Telegram: price × quantity stays within
    one invoice's maximum."""
    top = largest_qty(p) if stock is None else min(largest_qty(p), stock)
    choices = [q for q in QUANTITY_CHOICES if p.min_qty <= q <= top] or [p.min_qty]
    buttons = [_button(str(q), BuyCb(product_id=p.id, qty=q)) for q in choices]
    buttons.append(_button(tr_plain("button-back"), ProductCb(product_id=p.id)))
    return _markup(_grid(buttons, 4))


def orders(items: list[Order]) -> InlineKeyboardMarkup | None:
    buttons = []
    for o in items:
        if o.status is OrderStatus.DELIVERED:
            buttons.append(_button(tr_plain("button-show-keys", ref=o.ref), RevealCb(ref=o.ref)))
        elif o.status is OrderStatus.PENDING:
            buttons.append(_button(tr_plain("button-cancel-order", ref=o.ref), CancelCb(ref=o.ref)))
    return _markup(_grid(buttons, 1)) if buttons else None


def renew(product_id: int, quantity: int, *, fiat: bool) -> InlineKeyboardMarkup:
    """Under a membership reminder: buy the same product again with one tap (same quantity, same way of
    paying), through the storefront's Buy, so checkout's rules apply as to any purchase."""
    buy = RenewCb(product_id=product_id, qty=quantity, fiat=fiat)
    return _markup([[_button(tr_plain("button-renew"), buy)]])


def my_orders() -> InlineKeyboardMarkup:
    """Under an invoice reminder: the buyer's orders (the invoice itself is in the chat above)."""
    return _markup([[_button(tr_plain("menu-orders"), MenuCb(action="orders"))]])


def balance_offer(ref: str, available: str) -> InlineKeyboardMarkup:
    """Under the invoice, when the shop balance covers the order: pay from it instead."""
    label = tr_plain("button-balance-pay", available=available)
    return _markup([[_button(clip(label, BUTTON_TEXT_MAX), PayBalanceCb(ref=ref, step="ask"))]])


def balance_confirm(ref: str) -> InlineKeyboardMarkup:
    """Confirm paying from the balance, or go back to the offer."""
    return _markup(
        [
            [
                _button(tr_plain("button-balance-confirm"), PayBalanceCb(ref=ref, step="go")),
                _button(tr_plain("button-balance-cancel"), PayBalanceCb(ref=ref, step="back")),
            ]
        ]
    )


def languages() -> InlineKeyboardMarkup:
    return _markup([[_button(name, LanguageCb(code=code)) for code, name in LANGUAGES.items()]])


def share_phone() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=tr_plain("button-share-phone"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


def stock_of(p: Product, available: int) -> int | None:
    """What a buyer is told: a count for unique keys, None ("available") for shared and manual products."""
    return available if p.delivery_kind is DeliveryKind.UNIQUE else None
