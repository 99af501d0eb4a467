"""Catalog: categories, product lists and product cards."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from core.models import Product
from core.services import Services
from handlers.telegram import keyboards
from handlers.telegram.callbacks import CategoryCb, MenuCb, ProductCb, QuantityCb
from handlers.telegram.text import price, tr


async def _show(event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Edit the message the button belongs to (no chat clutter), or answer a command."""
    if isinstance(event, CallbackQuery):
        await event.answer()
        if event.message is not None and hasattr(event.message, "edit_text"):
            await event.message.edit_text(text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)


async def _shelf(services: Services, category_id: int | None) -> list[tuple[Product, int | None]]:
    return [(p, keyboards.stock_of(p, n)) for p, n in await services.catalog.shelf(category_id)]


async def catalog(event: Message | CallbackQuery, services: Services) -> None:
    """Receives: /catalog and the Catalog button: categories, or the products when there are none."""
    cats = await services.catalog.categories()
    if cats:
        await _show(event, tr("catalog-title"), keyboards.categories(cats))
        return
    items = await _shelf(services, None)
    if not items:
        await _show(event, tr("catalog-empty"), None)
        return
    await _show(
        event,
        tr("catalog-products", category=tr("catalog-all")),
        keyboards.products(items, back_to_categories=False),
    )


async def category(query: CallbackQuery, callback_data: CategoryCb, services: Services) -> None:
    """Receives: a tap on a category (0: all products)."""
    cid = callback_data.category_id or None
    items = await _shelf(services, cid)
    cats = await services.catalog.categories()
    name = next((c.name for c in cats if c.id == cid), tr("catalog-all"))
    if not items:
        await _show(query, tr("catalog-empty"), keyboards.categories(cats))
        return
    await _show(
        query, tr("catalog-products", category=name), keyboards.products(items, back_to_categories=bool(cats))
    )


def card_text(p: Product, stock: int | None) -> str:
    lines = [f"<b>{p.name}</b>"]
    if p.description:
        lines.append(p.description)
    lines.append("")
    lines.append(tr("product-price", price=price(p)))
    if stock == 0:
        lines.append(tr("product-out-of-stock"))
    elif stock is None:
        lines.append(tr("product-always-available"))
    else:
        lines.append(tr("product-stock", stock=stock))
    if p.max_qty > 1 or p.min_qty > 1:
        lines.append(tr("product-quantity-range", min=p.min_qty, max=p.max_qty))
    if p.user_limit and p.user_limit_hours:
        lines.append(tr("product-user-limit", limit=p.user_limit, hours=p.user_limit_hours))
    if p.daily_limit:
        lines.append(tr("product-daily-limit", limit=p.daily_limit))
    if p.validity_days:
        lines.append(tr("product-validity", days=p.validity_days))
    if p.delivery_kind == "manual":
        lines.append(tr("product-manual"))
    if p.requires_phone:
        lines.append(tr("product-phone"))
    return "\n".join(lines)


async def product(
    query: CallbackQuery, callback_data: ProductCb, services: Services, fiat_currency: str | None, locale: str
) -> None:
    """Receives: a tap on a product: its card, with Buy buttons when it is in stock."""
    p, available = await services.catalog.card(callback_data.product_id)
    if not p.active:
        await query.answer(tr("error-product-unavailable", name=p.name), show_alert=True)
        return
    stock = keyboards.stock_of(p, available)
    await _show(
        query,
        card_text(p, stock),
        keyboards.product_card(p, stock, fiat_currency=fiat_currency, locale=locale),
    )


async def quantity(query: CallbackQuery, callback_data: QuantityCb, services: Services) -> None:
    """Receives: "Choose quantity": the quantities the product's limits and stock allow."""
    p, available = await services.catalog.card(callback_data.product_id)
    await _show(
        query, tr("quantity-title", name=p.name), keyboards.quantities(p, keyboards.stock_of(p, available))
    )


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher)."""
    router = Router(name=__name__)
    router.message.register(catalog, Command("catalog"))
    router.callback_query.register(catalog, MenuCb.filter(F.action == "catalog"))
    router.callback_query.register(category, CategoryCb.filter())
    router.callback_query.register(product, ProductCb.filter())
    router.callback_query.register(quantity, QuantityCb.filter())
    return router
