"""Catalog: categories, product lists and product cards, a page at a time."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from core.errors import ProductNotFound
from core.models import Product
from core.services import Services
from handlers.telegram.chats import private_router
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import CatalogCb, CategoryCb, MenuCb, ProductCb, QuantityCb
from handlers.telegram.ui.cards import card_text
from handlers.telegram.ui.text import (
    CALLBACK_ANSWER_MAX,
    acknowledge,
    redraw,
    show,
    tr,
    tr_plain,
)


async def _shelf(services: Services, category_id: int | None) -> list[tuple[Product, int | None]]:
    return [(p, keyboards.stock_of(p, n)) for p, n in await services.catalog.shelf(category_id)]


def _with_page(text: str, page: int, pages: int) -> str:
    return text if pages <= 1 else f"{text}\n{tr('page-indicator', page=page + 1, pages=pages)}"


async def catalog(event: Message | CallbackQuery, services: Services) -> None:
    """Receives: /catalog and the Catalog button: categories, or the products when there are none."""
    await _catalog_page(event, services, 0)


async def catalog_page(query: CallbackQuery, callback_data: CatalogCb, services: Services) -> None:
    """Receives: ◀️/▶️ on the category list."""
    await _catalog_page(query, services, callback_data.page)


async def _catalog_page(event: Message | CallbackQuery, services: Services, page: int) -> None:
    cats = await services.catalog.categories()
    if cats:
        _, page, pages = keyboards.page_of(cats, page)
        await show(event, _with_page(tr("catalog-title"), page, pages), keyboards.categories(cats, page))
        return
    await _products_page(event, services, 0, page)


async def category(query: CallbackQuery, callback_data: CategoryCb, services: Services) -> None:
    """Receives: a tap on a category (0: all products), or ◀️/▶️ on its product list."""
    await _products_page(query, services, callback_data.category_id, callback_data.page)


async def _products_page(
    event: Message | CallbackQuery, services: Services, category_id: int, page: int
) -> None:
    items = await _shelf(services, category_id or None)
    cats = await services.catalog.categories()
    name = next((c.name for c in cats if c.id == category_id), None)
    if not items:
        # a category with nothing on sale says so; "nothing is for sale" only when that is true
        text = tr("catalog-category-empty", category=name) if name else tr("catalog-empty")
        await show(event, text, keyboards.categories(cats) if cats else None)
        return
    name = name or tr_plain("catalog-all")
    _, page, pages = keyboards.page_of(items, page)
    await show(
        event,
        _with_page(tr("catalog-products", category=name), page, pages),
        keyboards.products(items, back_to_categories=bool(cats), category_id=category_id, page=page),
    )


async def _unavailable(query: CallbackQuery, p: Product) -> None:
    text = tr_plain("error-product-unavailable", name=p.name, limit=CALLBACK_ANSWER_MAX)
    await acknowledge(query, text, show_alert=True)


async def product(
    query: CallbackQuery, callback_data: ProductCb, services: Services, fiat_currency: str | None, locale: str
) -> None:
    """Receives: a tap on a product: its card, with Buy buttons when it is in stock."""
    p, available = await services.catalog.card(callback_data.product_id)
    if not p.active:
        await _unavailable(query, p)
        return
    await _show_card(query, p, available, fiat_currency, locale)


async def _show_card(
    event: Message | CallbackQuery, p: Product, available: int, fiat_currency: str | None, locale: str
) -> None:
    stock = keyboards.stock_of(p, available)
    await show(
        event,
        card_text(p, stock),
        keyboards.product_card(p, stock, fiat_currency=fiat_currency, locale=locale),
    )


async def open_card(
    message: Message, product_id: int, services: Services, fiat_currency: str | None, locale: str
) -> bool:
    """A product's card as a new message (a deep link's product), if it is on sale; False if not."""
    try:
        p, available = await services.catalog.card(product_id)
    except ProductNotFound:
        return False
    if not p.active:
        return False
    await _show_card(message, p, available, fiat_currency, locale)
    return True


async def quantity(query: CallbackQuery, callback_data: QuantityCb, services: Services) -> None:
    """Receives: "Choose quantity": the quantities the product's limits and stock allow. A step of the
    checkout, so answered first, like Buy (``checkout.buy``); a product taken off sale since its card was
    shown is said on the card, which keeps only « Back."""
    await acknowledge(query)
    p, available = await services.catalog.card(callback_data.product_id)
    if not p.active:
        await redraw(
            query, tr("error-product-unavailable", name=p.name), keyboards.back_to_category(p.category_id)
        )
        return
    await redraw(
        query, tr("quantity-title", name=p.name), keyboards.quantities(p, keyboards.stock_of(p, available))
    )


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.message.register(catalog, Command("catalog"))
    router.callback_query.register(catalog, MenuCb.filter(F.action == "catalog"))
    router.callback_query.register(catalog_page, CatalogCb.filter())
    router.callback_query.register(category, CategoryCb.filter())
    router.callback_query.register(product, ProductCb.filter())
    router.callback_query.register(quantity, QuantityCb.filter())
    return router
