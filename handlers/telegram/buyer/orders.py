"""My orders: the list, keys shown again (audited), and cancelling an unpaid order."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from core.errors import OrderNotFound
from core.models import User
from core.services import Services
from handlers.money import format_amount
from handlers.telegram.chats import private_router
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import CancelCb, MenuCb, RevealCb
from handlers.telegram.ui.delivery import send_keys
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, order_status, reply, tr, tr_plain


async def my_orders(
    event: Message | CallbackQuery, shop_user: User | None, services: Services, locale: str
) -> None:
    """Receives: /orders and the My orders button."""
    history = await services.orders.history(shop_user.id, limit=10) if shop_user is not None else []
    if not history:
        text, markup = tr("orders-empty"), None
    else:
        lines = [tr("orders-title")] + [
            tr(
                "order-line",
                ref=line.order.ref,
                name=line.product_name,
                qty=line.order.quantity,
                amount=format_amount(line.order.amount, line.order.currency, locale),
                status=order_status(line.order),
            )
            for line in history
        ]
        text, markup = "\n".join(lines), keyboards.orders([line.order for line in history])
    await reply(event, text, markup)


async def reveal(
    query: CallbackQuery, callback_data: RevealCb, bot: Bot, shop_user: User | None, services: Services
) -> None:
    """Receives: "Keys of <ref>". Only the buyer's own delivered orders; every reveal is audited."""
    if shop_user is None:  # has no orders: someone else's button
        raise OrderNotFound(ref=callback_data.ref)
    shown = await services.orders.reveal(
        callback_data.ref, user_id=shop_user.id, actor=f"user:{shop_user.id}", reason="my_orders"
    )
    await acknowledge(query)
    timezone = services.ctx.config.timezone
    await send_keys(bot, query.from_user.id, shown.order, shown.product, shown.keys, timezone)


async def cancel(
    query: CallbackQuery, callback_data: CancelCb, shop_user: User | None, services: Services
) -> None:
    """Receives: "Cancel order <ref>" on a pending order: the reserved stock returns."""
    if shop_user is None:
        raise OrderNotFound(ref=callback_data.ref)
    order = await services.orders.cancel(
        callback_data.ref, user_id=shop_user.id, actor=f"user:{shop_user.id}"
    )
    text = tr_plain("order-cancelled", ref=order.ref, limit=CALLBACK_ANSWER_MAX)
    await acknowledge(query, text, show_alert=True)


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only: orders and
    keys are never shown in a group."""
    router = private_router(__name__)
    router.message.register(my_orders, Command("orders"))
    router.callback_query.register(my_orders, MenuCb.filter(F.action == "orders"))
    router.callback_query.register(reveal, RevealCb.filter())
    router.callback_query.register(cancel, CancelCb.filter())
    return router
