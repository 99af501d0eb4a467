"""Checkout with Telegram Stars (or a fiat provider): reserve, invoice, pre-checkout, payment."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery

from core.errors import PhoneRequired, ReservationExpired, ShopError
from core.models import User
from core.services import STARS, Services
from handlers.telegram import keyboards
from handlers.telegram.callbacks import BuyCb
from handlers.telegram.chats import PRIVATE, PRIVATE_CALLBACK
from handlers.telegram.middlewares import UserCache
from handlers.telegram.outbox import OutboxSender
from handlers.telegram.text import INVOICE_DESCRIPTION_MAX, INVOICE_TITLE_MAX, clip, tr, tr_plain

log = logging.getLogger(__name__)
PROVIDER = "telegram"


async def buy(
    query: CallbackQuery,
    callback_data: BuyCb,
    bot: Bot,
    shop_user: User,
    services: Services,
    reservation_minutes: int,
    fiat_currency: str | None,
    payment_provider_token: str | None,
) -> None:
    """Receives: a Buy button. Reserves the stock and sends the invoice (payload: the order reference)."""
    fiat = callback_data.fiat and fiat_currency is not None and payment_provider_token is not None
    currency = fiat_currency if fiat and fiat_currency else STARS
    try:
        order = await services.orders.checkout(
            shop_user.id, callback_data.product_id, callback_data.qty, currency
        )
    except PhoneRequired:
        await query.answer()
        await bot.send_message(query.from_user.id, tr("phone-ask"), reply_markup=keyboards.share_phone())
        return
    product = await services.catalog.product(order.product_id)
    await query.answer()
    await bot.send_invoice(
        chat_id=query.from_user.id,
        title=clip(product.name, INVOICE_TITLE_MAX),  # plain-text fields: never HTML-escaped
        description=tr_plain(
            "invoice-description",
            qty=order.quantity,
            name=product.name,
            ref=order.ref,
            minutes=reservation_minutes,
            limit=INVOICE_DESCRIPTION_MAX,
        ),
        payload=order.ref,
        currency=order.currency,
        prices=[LabeledPrice(label=f"{clip(product.name, 28)} × {order.quantity}", amount=order.amount)],
        provider_token=payment_provider_token if fiat else None,
    )


async def pre_checkout(query: PreCheckoutQuery, services: Services) -> None:
    """Receives: Telegram's question just before charging. Answered ok only while the reservation holds;
    one indexed read, far inside Telegram's 10 seconds."""
    try:
        await services.orders.check_payable(query.invoice_payload, query.total_amount, query.currency)
    except ReservationExpired:
        await query.answer(ok=False, error_message=tr("precheckout-expired"))
    except ShopError as e:
        log.info("pre-checkout refused for %s: %s", query.invoice_payload[:32], e.key)
        await query.answer(ok=False, error_message=tr("precheckout-invalid"))
    else:
        await query.answer(ok=True)


async def paid(message: Message, shop_user: User, services: Services, outbox: OutboxSender) -> None:
    """Receives: the payment. Confirms and delivers in one transaction (idempotent on the charge id); the
    keys, or a refund, reach the buyer through the outbox, which is woken at once."""
    sp = message.successful_payment
    assert sp is not None
    result = await services.orders.confirm_payment(
        PROVIDER,
        sp.telegram_payment_charge_id,
        sp.invoice_payload,
        sp.total_amount,
        sp.currency,
        payer_id=shop_user.id,
    )
    if result.replay:
        log.info("payment %s seen before: nothing to do", sp.telegram_payment_charge_id)
    outbox.wake()


async def contact(message: Message, shop_user: User, services: Services, user_cache: UserCache) -> None:
    """Receives: a shared contact. Only the user's own number is accepted."""
    c = message.contact
    assert c is not None
    if message.from_user is None or c.user_id != message.from_user.id:
        await message.answer(tr("error-invalid-input"))
        return
    await services.users.set_phone(shop_user.id, c.phone_number)
    user_cache.forget(message.from_user.id)
    await message.answer(tr("phone-saved"), reply_markup=keyboards.main_menu())


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher)."""
    router = Router(name=__name__)
    router.callback_query.register(buy, BuyCb.filter(), PRIVATE_CALLBACK)
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(paid, F.successful_payment)
    router.message.register(contact, F.contact, PRIVATE)
    return router
