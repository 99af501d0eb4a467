"""Quick edits of a product: ``/price ID 9.90`` (in the shop's currency), ``/price ID 50 stars``,
``/hide ID`` (off sale) and ``/show ID`` (on sale again); the menu's Products button lists the products
with their ids, prices and state."""

from __future__ import annotations

import re

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.models import STARS, Product
from core.roles import Power
from core.services import Services
from handlers.money import parse_amount
from handlers.telegram.admin.category_form import categories_button
from handlers.telegram.admin.common import actor, back_to_menu
from handlers.telegram.admin.filters import Has
from handlers.telegram.admin.product_form import new_product_button
from handlers.telegram.ui.callbacks import MAX_ID, AdminCb, EditProductCb
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, clip, price, show, tr, tr_plain

_ID = r"[1-9][0-9]{0,18}"
_PRICE = re.compile(rf"({_ID})\s+([0-9][0-9.,]{{0,24}})(\s+stars)?", re.IGNORECASE)
_ONE_ID = re.compile(_ID)
MAX_LINES = 60
MAX_EDIT_BUTTONS = 60  # Telegram: at most 100 buttons per keyboard


def _product_id(text: str) -> int | None:
    return int(text) if _ONE_ID.fullmatch(text) and int(text) <= MAX_ID else None


def _line(p: Product, currency: str) -> str:
    key = "admin-product-line" if p.active else "admin-product-line-hidden"
    both = f"{price(p, fiat=True, currency=currency)} / {price(p)}"
    return tr(key, id=p.id, name=p.name, price=both)


async def products_screen(event: Message | CallbackQuery, services: Services) -> None:
    """Receives: /products and the menu's Products button."""
    currency = services.ctx.config.currency
    products = await services.catalog.products()
    lines = [tr("admin-products-title")]
    lines += [_line(p, currency) for p in products[:MAX_LINES]] or [tr("admin-products-none")]
    lines += ["", tr("admin-products-usage"), tr("ae-products-usage")]
    await show(event, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=_buttons(products)))


def _buttons(products: list[Product]) -> list[list[InlineKeyboardButton]]:
    """An Edit button per product (two a row), New product and Categories, Back to the menu."""
    edits = [
        InlineKeyboardButton(
            text=clip(tr_plain("ae-btn-edit-product", id=p.id, name=p.name), BUTTON_TEXT_MAX),
            callback_data=EditProductCb(product_id=p.id).pack(),
        )
        for p in products[:MAX_EDIT_BUTTONS]
    ]
    rows = [edits[i : i + 2] for i in range(0, len(edits), 2)]
    rows.append([new_product_button(), categories_button()])
    rows.append([back_to_menu()])
    return rows


async def set_price(message: Message, command: CommandObject, services: Services) -> None:
    """Receives: /price <product id> <amount> [stars]."""
    m = _PRICE.fullmatch(" ".join((command.args or "").split()))
    pid = _product_id(m.group(1)) if m else None
    if m is None or pid is None:
        await message.answer(tr("admin-price-usage"))
        return
    stars = m.group(3) is not None
    currency = services.ctx.config.currency
    amount = parse_amount(m.group(2), STARS if stars else currency)
    change = {"price_stars": amount} if stars else {"price": amount}
    product = await services.catalog.update_product(pid, actor=actor(message), **change)
    await message.answer(tr("admin-product-saved") + "\n" + _line(product, currency))


async def _set_active(message: Message, command: CommandObject, services: Services, active: bool) -> None:
    pid = _product_id((command.args or "").strip())
    if pid is None:
        await message.answer(tr("admin-hide-usage"))
        return
    product = await services.catalog.update_product(pid, actor=actor(message), active=active)
    await message.answer(tr("admin-product-saved") + "\n" + _line(product, services.ctx.config.currency))


async def hide(message: Message, command: CommandObject, services: Services) -> None:
    """Receives: /hide <product id>: off sale (its card says so; pending orders stay payable)."""
    await _set_active(message, command, services, False)


async def show_product(message: Message, command: CommandObject, services: Services) -> None:
    """Receives: /show <product id>: on sale again."""
    await _set_active(message, command, services, True)


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.PRODUCTS))
    router.callback_query.filter(Has(Power.PRODUCTS))
    router.message.register(products_screen, Command("products"))
    router.message.register(set_price, Command("price"))
    router.message.register(hide, Command("hide"))
    router.message.register(show_product, Command("show"))
    router.callback_query.register(products_screen, AdminCb.filter(F.screen == "products"))
    return router
