"""Checkout with Telegram Stars (or a fiat provider): reserve, invoice, pre-checkout, payment."""

from __future__ import annotations

import contextlib
import json
import logging
import re

from aiogram import Bot, F, Router
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import CallbackQuery, LabeledPrice, Message, PreCheckoutQuery

from core.errors import NotOrderOwner, PhoneRequired, ProductNotFound, ReservationExpired, ShopError
from core.models import STARS, Charge, Order, Product, User, UserIdentity
from core.services import Services
from handlers.telegram.buyer import balance
from handlers.telegram.buyer.catalog import card_text
from handlers.telegram.chats import PRIVATE, PRIVATE_CALLBACK
from handlers.telegram.filters import When
from handlers.telegram.middlewares import UserCache
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.callbacks import BuyCb, RenewCb
from handlers.telegram.ui.text import (
    CALLBACK_ANSWER_MAX,
    INVOICE_DESCRIPTION_MAX,
    INVOICE_TITLE_MAX,
    acknowledge,
    clip,
    redraw,
    refusal,
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
    callback_data: BuyCb | RenewCb,
    bot: Bot,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    user_cache: UserCache,
    reservation_minutes: int,
    fiat_currency: str | None,
    payment_provider_token: str | None,
    locale: str,
) -> None:
    """Receives: a Buy button: one key, a quantity from the list, or the shop-currency (💳) button, and a
    membership reminder's Renew (``RenewCb``); tapped again, it sends the invoice of the same unpaid order
    once more. Reserves the stock and sends the
    invoice (payload: the order reference), then, when the buyer's shop balance covers the order, the
    offer to pay from it (``balance``).

    The tap is answered first, before any database work: Telegram takes an answer only within about 15 s,
    and in a flash sale the reservations queue behind one another for longer than that. Whatever the buyer
    is told after the answer comes on the card or in a message (see ``_refused``, the error handler)."""
    await acknowledge(query, tr_plain("checkout-wait", limit=CALLBACK_ANSWER_MAX))
    fiat = callback_data.fiat and fiat_currency is not None and payment_provider_token is not None
    currency = fiat_currency if fiat and fiat_currency else STARS
    try:
        order, created, buyer = await services.checkout.checkout_or_reuse(
            shop_user.id if shop_user is not None else identity,  # a first purchase creates the row
            callback_data.product_id,
            callback_data.qty,
            currency,
        )
        if shop_user is None:  # a newcomer no more: their row was made with the order
            await user_cache.newcomer_stored(query.from_user.id, buyer)
    except PhoneRequired:
        await bot.send_message(query.from_user.id, tr("phone-ask"), reply_markup=keyboards.share_phone())
        return
    except ProductNotFound:
        raise  # no card left to show it on: the error handler says so in a message
    except ShopError as e:
        if isinstance(callback_data, RenewCb):  # under a reminder, which stays as it is: told apart
            await bot.send_message(query.from_user.id, refusal(e, plain=False))
        else:
            await _refused(query, e, services, callback_data.product_id, fiat_currency, locale)
        return
    try:
        product = await services.catalog.product(order.product_id)
        await _send_invoice(
            bot, query.from_user.id, order, product, reservation_minutes, fiat, payment_provider_token
        )
    except Exception as e:
        # The invoice never reached the buyer (Telegram refused it, the buyer blocked the bot, the network
        # failed or timed out): the stock reserved for it goes back now, not when the reservation runs out,
        # so another buyer can have it. After a timeout the invoice may have arrived all the same; paying it
        # is then refused at pre-checkout (the order is cancelled), so nobody pays for released stock.
        # An order reused for this tap (created=False) is left to its reservation: the buyer may hold its
        # earlier invoice and be paying it right now (a double tap's first invoice may even be on its way),
        # and cancelling would turn that payment into a late one, refunded if the stock is gone.
        if created:
            await _release(services, order, e)
        raise
    # After the invoice, never holding it up: paying from the shop balance, when it covers the order.
    await balance.offer(bot, query.from_user.id, order, services, locale)


async def _refused(
    query: CallbackQuery,
    refusal_error: ShopError,
    services: Services,
    product_id: int,
    fiat_currency: str | None,
    locale: str,
) -> None:
    """A purchase refused after its tap was answered (out of stock, a limit, too many unpaid orders...):
    the card the Buy button belongs to is drawn again as it is now, the reason on top. An edit, not a
    message: Telegram counts messages against its flood limits, and a flash sale turns most buyers away at
    the same moment, while the winners' invoices still have to go out."""
    p, available = await services.catalog.card(product_id)
    stock = keyboards.stock_of(p, available)
    markup = (
        keyboards.product_card(p, stock, fiat_currency=fiat_currency, locale=locale)
        if p.active
        else keyboards.back_to_category(p.category_id)
    )
    await redraw(query, f"{refusal(refusal_error, plain=False)}\n\n{card_text(p, stock)}", markup)


# Why an invoice never reached its buyer, as the audit log records it (the actor who cancelled its order).
_NOT_SENT: tuple[tuple[type[Exception], str], ...] = (
    (TelegramForbiddenError, "blocked"),  # the buyer blocked the bot
    (TelegramRetryAfter, "flood_limit"),
    (TelegramNetworkError, "network"),  # a timeout too: the invoice may have arrived
    (TelegramAPIError, "refused"),
)


def invoice_not_sent(error: Exception) -> str:
    """The audit actor of an order cancelled because its invoice was not sent, naming why."""
    why = next((reason for cls, reason in _NOT_SENT if isinstance(error, cls)), "error")
    return f"system:invoice_not_sent:{why}"


async def _release(services: Services, order: Order, error: Exception) -> None:
    """Cancel the order whose invoice was never delivered; its keys return to stock at once, audited as
    the order's cancellation by ``invoice_not_sent(error)``. Paid, expired or cancelled meanwhile: nothing
    is left to release."""
    log.info("invoice for order %s not sent (%s): reservation released", order.ref, type(error).__name__)
    with contextlib.suppress(ShopError):
        await services.orders.cancel(order.ref, user_id=None, actor=invoice_not_sent(error))


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


async def pre_checkout(
    query: PreCheckoutQuery, shop_user: User | None, services: Services, identity: UserIdentity | None = None
) -> None:
    """Receives: Telegram's question just before charging. Answered ok only to the order's own buyer while
    the reservation holds: one indexed read of the order with its buyer (the payer is told apart by their
    Telegram id when this process has not looked them up), far inside Telegram's 10 seconds."""
    try:
        payer = shop_user.id if shop_user is not None else identity
        if payer is None:  # nobody we could tell apart (not a person): not the buyer of anything
            raise NotOrderOwner(ref=query.invoice_payload[:32])
        await services.payments.check_payable(
            query.invoice_payload, query.total_amount, query.currency, payer=payer
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


async def paid(
    message: Message,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    outbox: OutboxSender,
    user_cache: UserCache,
) -> None:
    """Receives: the payment (Stars or fiat). The notice is recorded, the payment confirmed and the order
    delivered in one transaction (idempotent on the charge id); the keys, or a refund to whoever paid,
    reach them through the outbox, which is woken at once. If confirming fails, the notice is recorded on
    its own and tried once more; failing again, it is left to the payment-notices job, and the payer is
    told their payment is being processed."""
    sp = message.successful_payment
    assert sp is not None
    raw = sp.model_dump(mode="json", exclude_none=True)
    try:
        payer = await services.users.stored(shop_user or identity)  # whoever paid is owed the money back
        if shop_user is None:
            await user_cache.forget(int(identity.external_id))
        charge = Charge(
            PROVIDER,
            sp.telegram_payment_charge_id,
            sp.invoice_payload,
            sp.total_amount,
            sp.currency,
            payer_id=payer.id,
        )
        outcome = await services.payments.receive_notice(charge, raw=raw)
    except Exception:
        # The one copy left is this log line: it has what is needed to deliver or refund by hand.
        log.critical(
            "payment notice NOT recorded (payer: Telegram user %s): %s", identity.external_id, json.dumps(raw)
        )
        raise
    if outcome.ok:
        if outcome.result is not None and outcome.result.replay:
            log.info("payment %s seen before: nothing to do", sp.telegram_payment_charge_id)
        outbox.wake()
        return
    await message.answer(tr("payment-processing", ref=sp.invoice_payload[:32]))


async def contact(
    message: Message,
    shop_user: User | None,
    identity: UserIdentity,
    services: Services,
    user_cache: UserCache,
) -> None:
    """Receives: a shared contact. Only the user's own number is accepted."""
    c = message.contact
    assert c is not None
    if message.from_user is None or c.user_id != message.from_user.id:
        await message.answer(tr("error-invalid-input"))
        return
    user = await services.users.stored(shop_user or identity)
    await services.users.set_phone(user.id, c.phone_number)
    await user_cache.forget(message.from_user.id)
    await message.answer(tr("phone-saved"), reply_markup=keyboards.main_menu())


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher)."""
    router = Router(name=__name__)
    router.callback_query.register(buy, BuyCb.filter(), PRIVATE_CALLBACK)
    router.callback_query.register(buy, RenewCb.filter(), PRIVATE_CALLBACK)
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(paid, When(F.successful_payment))
    router.message.register(contact, When(F.contact), PRIVATE)
    return router
