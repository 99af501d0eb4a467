"""Checkout with Telegram Stars (or a fiat provider): reserve, invoice, pre-checkout, payment."""

from __future__ import annotations

import contextlib
import json
import logging
import re

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery

from core.errors import NotOrderOwner, PhoneRequired, ReservationExpired, ShopError
from core.models import STARS, Charge, Order, Product, User
from core.services import Services
from handlers.telegram.chats import PRIVATE, PRIVATE_CALLBACK
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import BuyCb
from handlers.telegram.ui.text import (
    INVOICE_DESCRIPTION_MAX,
    INVOICE_TITLE_MAX,
    acknowledge,
    clip,
    tr,
    tr_plain,
)
from handlers.telegram.workers.outbox import OutboxSender

log = logging.getLogger(__name__)
PROVIDER = "telegram"


def start_parameter(order_ref: str) -> str:
    """The invoice's deep-link parameter: unique per order and never empty, so a forwarded copy of the
    invoice shows a link to the bot instead of a Pay button (Telegram: 1-64 of ``A-Za-z0-9_-``)."""
    return "order-" + re.sub(r"[^A-Za-z0-9_-]", "", order_ref)[:58]


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
        order, created = await services.checkout.checkout_or_reuse(
            shop_user.id, callback_data.product_id, callback_data.qty, currency
        )
    except PhoneRequired:
        await acknowledge(query)
        await bot.send_message(query.from_user.id, tr("phone-ask"), reply_markup=keyboards.share_phone())
        return
    product = await services.catalog.product(order.product_id)
    await acknowledge(query)  # a query too old to answer still gets its invoice
    try:
        await _send_invoice(
            bot, query.from_user.id, order, product, reservation_minutes, fiat, payment_provider_token
        )
    except Exception:
        # No invoice, no reason to hold stock: the reservation made for it goes back at once (a reused
        # order keeps its earlier invoice, so it stays). The error handler then tells the buyer, or not.
        if created:
            with contextlib.suppress(ShopError):
                await services.orders.cancel(order.ref, user_id=None, actor="system:invoice_not_sent")
        raise


async def _send_invoice(
    bot: Bot,
    chat_id: int,
    order: Order,
    product: Product,
    reservation_minutes: int,
    fiat: bool,
    payment_provider_token: str | None,
) -> None:
    await bot.send_invoice(
        chat_id=chat_id,
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
        start_parameter=start_parameter(order.ref),
        currency=order.currency,
        prices=[LabeledPrice(label=f"{clip(product.name, 28)} × {order.quantity}", amount=order.amount)],
        provider_token=payment_provider_token if fiat else None,
    )


async def pre_checkout(query: PreCheckoutQuery, shop_user: User, services: Services) -> None:
    """Receives: Telegram's question just before charging. Answered ok only to the order's own buyer while
    the reservation holds; one indexed read, far inside Telegram's 10 seconds."""
    try:
        await services.payments.check_payable(
            query.invoice_payload, query.total_amount, query.currency, payer_id=shop_user.id
        )
    except ReservationExpired:
        await query.answer(ok=False, error_message=tr("precheckout-expired"))
    except NotOrderOwner:
        log.info("pre-checkout refused for %s: not the buyer", query.invoice_payload[:32])
        await query.answer(ok=False, error_message=tr("precheckout-not-owner"))
    except ShopError as e:
        log.info("pre-checkout refused for %s: %s", query.invoice_payload[:32], e.key)
        await query.answer(ok=False, error_message=tr("precheckout-invalid"))
    else:
        await query.answer(ok=True)


async def paid(message: Message, shop_user: User, services: Services, outbox: OutboxSender) -> None:
    """Receives: the payment (Stars or fiat). The notice is recorded durably first, then confirmed and
    delivered in one transaction (idempotent on the charge id); the keys, or a refund to whoever paid,
    reach them through the outbox, which is woken at once. If confirming fails, the notice is retried by
    the payment-notices job and the payer is told their payment is being processed."""
    sp = message.successful_payment
    assert sp is not None
    raw = sp.model_dump(mode="json", exclude_none=True)
    try:
        charge = Charge(
            PROVIDER,
            sp.telegram_payment_charge_id,
            sp.invoice_payload,
            sp.total_amount,
            sp.currency,
            payer_id=shop_user.id,
        )
        notice = await services.payments.record_notice(charge, raw=raw)
    except Exception:
        # The one copy left is this log line: it has what is needed to deliver or refund by hand.
        log.critical("payment notice NOT recorded (payer %s): %s", shop_user.id, json.dumps(raw))
        raise
    outcome = await services.payments.process_notice(notice)
    if outcome.ok:
        if outcome.result is not None and outcome.result.replay:
            log.info("payment %s seen before: nothing to do", sp.telegram_payment_charge_id)
        outbox.wake()
        return
    await message.answer(tr("payment-processing", ref=sp.invoice_payload[:32]))


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
