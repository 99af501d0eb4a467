"""/stock: stock levels of the products within reach (an operator's scope), with a LOW mark at or under a
product's low-stock threshold."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from core.models import DeliveryKind
from core.roles import Grant, Power
from core.services import Services
from handlers.telegram.admin.common import back_to_menu
from handlers.telegram.admin.filters import Has
from handlers.telegram.ui.callbacks import AdminCb
from handlers.telegram.ui.text import show, tr

MAX_LINES = 60  # a message holds 4096 characters; names are at most 64


async def stock_screen(event: Message | CallbackQuery, grant: Grant, services: Services) -> None:
    """Receives: /stock, and the menu's Stock button."""
    categories = {p.id: p.category_id for p in await services.catalog.products()}
    levels = [
        lv
        for lv in await services.stock.levels()
        if grant.covers(lv.product_id, categories.get(lv.product_id))
    ]
    lines = [tr("admin-stock-title")]
    for lv in levels[:MAX_LINES]:
        if lv.delivery_kind is not DeliveryKind.UNIQUE:
            lines.append(tr("admin-stock-line-other", id=lv.product_id, name=lv.product_name))
            continue
        key = "admin-stock-line-low" if lv.is_low else "admin-stock-line"
        lines.append(
            tr(
                key,
                id=lv.product_id,
                name=lv.product_name,
                available=lv.available,
                reserved=lv.reserved,
                sold=lv.sold,
            )
        )
    if not levels:
        lines.append(tr("admin-stock-none"))
    elif len(levels) > MAX_LINES:
        lines.append(tr("admin-stock-more", count=len(levels) - MAX_LINES))
    lines += ["", tr("admin-stock-hint")]
    if grant.may(Power.EXPORT):
        lines.append(tr("admin-stock-hint-export"))
    back = back_to_menu()
    await show(event, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[back]]))


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.STOCK))
    router.callback_query.filter(Has(Power.STOCK))
    router.message.register(stock_screen, Command("stock"))
    router.callback_query.register(stock_screen, AdminCb.filter(F.screen == "stock"))
    return router
