"""Paying an order from the shop balance (available commission): the offer sent under the invoice when
the balance covers the order, the confirmation, and the payment (``BalancePaymentService``). Every step
edits the one offer message; the keys come through the outbox as after a Stars payment. The invoice stays
payable: whichever pays first wins, and the other is refused (pre-checkout refuses a paid order; this
module refuses one paid by Stars).

Each tap is checked by a read first (``quote``) and refused with an alert: someone else's or an unknown
order, one paid or expired meanwhile, a balance that no longer covers it. Forged data never gets that
far: aiogram's filter refuses it and the tap gets the stale-button alert."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup

from core.errors import OrderNotFound, ShopError
from core.models import Order, User
from core.services import Services
from core.services.balance_payments import BalanceQuote
from handlers.money import format_amount
from handlers.telegram.chats import private_router
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import PayBalanceCb
from handlers.telegram.ui.text import acknowledge, redraw, refusal, tr
from handlers.telegram.workers.outbox import OutboxSender


async def offer(bot: Bot, chat_id: int, order: Order, services: Services, locale: str) -> None:
    """After the invoice of ``order``: when its buyer's available balance in the order's currency covers
    it, one message offering to pay from the balance instead; nothing otherwise."""
    available = await services.balance.available(order.user_id, order.currency)
    if available < order.amount:
        return
    text, markup = _offer(order, available, locale)
    await bot.send_message(chat_id, text, reply_markup=markup)


def _offer(order: Order, available: int, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    have = format_amount(available, order.currency, locale)
    text = tr("balance-offer", ref=order.ref, amount=format_amount(order.amount, order.currency, locale))
    return text, keyboards.balance_offer(order.ref, have)


async def _quote(callback_data: PayBalanceCb, shop_user: User | None, services: Services) -> BalanceQuote:
    if shop_user is None:  # no row, so no orders: someone else's button
        raise OrderNotFound(ref=callback_data.ref)
    return await services.balance.quote(callback_data.ref, shop_user.id)


async def _unpaid(
    query: CallbackQuery, callback_data: PayBalanceCb, shop_user: User | None, services: Services, locale: str
) -> BalanceQuote | None:
    """The tap's quote once acknowledged; None when the order is paid already (the message then says so)."""
    q = await _quote(callback_data, shop_user, services)
    await acknowledge(query)
    if q.paid:
        await redraw(query, _paid_text(q.order, locale))
        return None
    return q


def _paid_text(order: Order, locale: str) -> str:
    return tr("balance-paid", ref=order.ref, amount=format_amount(order.amount, order.currency, locale))


async def ask(
    query: CallbackQuery, callback_data: PayBalanceCb, shop_user: User | None, services: Services, locale: str
) -> None:
    """Receives: "Pay with balance" under an invoice: the confirmation, on the same message."""
    q = await _unpaid(query, callback_data, shop_user, services, locale)
    if q is None:
        return
    o = q.order
    text = tr(
        "balance-confirm",
        ref=o.ref,
        amount=format_amount(o.amount, o.currency, locale),
        available=format_amount(q.available, o.currency, locale),
    )
    await redraw(query, text, keyboards.balance_confirm(o.ref))


async def go(
    query: CallbackQuery,
    callback_data: PayBalanceCb,
    shop_user: User | None,
    services: Services,
    outbox: OutboxSender,
    locale: str,
) -> None:
    """Receives: Confirm. Pays in one transaction (a second tap is a replay: nothing more is spent); the
    message says paid, or why not when the order was paid or the balance spent since the check."""
    q = await _quote(callback_data, shop_user, services)
    await acknowledge(query)
    assert shop_user is not None  # _quote refused a tap without a user
    try:
        result = await services.balance.pay(q.order.ref, shop_user.id)
    except ShopError as e:  # lost a race since the check: the Stars invoice was paid, the balance spent
        await redraw(query, refusal(e, plain=False))
        return
    outbox.wake()
    await redraw(query, _paid_text(result.order or q.order, locale))


async def back(
    query: CallbackQuery, callback_data: PayBalanceCb, shop_user: User | None, services: Services, locale: str
) -> None:
    """Receives: Cancel on the confirmation: the offer again (the invoice above is still there)."""
    q = await _unpaid(query, callback_data, shop_user, services, locale)
    if q is not None:
        await redraw(query, *_offer(q.order, q.available, locale))


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.callback_query.register(ask, PayBalanceCb.filter(F.step == "ask"))
    router.callback_query.register(go, PayBalanceCb.filter(F.step == "go"))
    router.callback_query.register(back, PayBalanceCb.filter(F.step == "back"))
    return router
