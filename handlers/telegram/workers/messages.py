"""How each typed outbox message (``core.messages``) reaches a Telegram user: one function per type, all
in ``DELIVERERS``. A type without one fails ``tests/unit/test_telegram_messages.py``, never a buyer.

A deliverer raises what Telegram raised: the outbox sender (``workers.outbox``) decides what a failure
means (retry, blocked user, refused request)."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError

from core.errors import ShopError
from core.messages import (
    AwaitingManual,
    BalanceReturned,
    Broadcast,
    ChatReply,
    DailySummary,
    InvoiceReminder,
    KeysDelivered,
    MembershipReminder,
    Message,
    PayoutPaid,
    PayoutQueueDue,
    PayoutReady,
    PayoutRejected,
    RefundDue,
    RefundMade,
    StockAlert,
)
from core.models import STARS, RevealedKeys
from core.services import Services
from core.services.outbox import OutboxMessage
from core.services.reminders import EXPIRED, days_left
from handlers.money import format_amount
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.ui import keyboards
from handlers.telegram.ui.delivery import send_keys
from handlers.telegram.ui.text import shop_time, tr
from handlers.telegram.workers import digests


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One claimed outbox row on its way out, with what delivering it needs."""

    bot: Bot
    services: Services
    alerts: AdminAlerts
    item: OutboxMessage
    revealed: RevealedKeys | ShopError | None = None  # a KeysDelivered's keys, revealed with its batch

    @property
    def chat(self) -> int:
        return int(self.item.external_id)


async def keys_delivered(out: Outgoing, m: KeysDelivered) -> None:
    shown = out.revealed
    if isinstance(shown, ShopError):
        raise shown  # this order alone was refused when its batch was revealed
    if shown is None:
        shown = await out.services.orders.reveal(
            m.order_ref, user_id=out.item.user_id, actor="outbox", reason="delivery"
        )
    timezone = out.services.ctx.config.timezone
    await send_keys(out.bot, out.chat, shown.order, shown.product, shown.keys, timezone)


async def awaiting_manual(out: Outgoing, m: AwaitingManual) -> None:
    ref = m.order_ref
    # The admins first, on their own path: a buyer who blocked the bot, an admin who did, or a busy admin
    # chat must neither hide a paid order from the shop nor repeat the buyer's message.
    if out.item.attempts == 0:
        await out.alerts.notify(f"🧾 manual order {html.escape(ref)} is paid", kind=f"manual:{ref}")
    await out.bot.send_message(out.chat, tr("delivery-awaiting-manual", ref=ref))


async def refund_due(out: Outgoing, m: RefundDue) -> None:
    """Pay a charge back to whoever paid it (this message is addressed to the payer), then tell them.

    Temporary failures (network, 5xx, 429) propagate to the sender, which retries with backoff; a permanent
    refusal marks the message failed and goes to the admins. Fiat charges cannot be refunded through the
    Bot API: the admins get the details to do it in the provider's dashboard."""
    if m.provider != "telegram" or m.currency != "XTR":
        await refund_alert(out, m, "must be refunded by hand in the payment provider's dashboard")
        return
    try:
        await out.bot.refund_star_payment(user_id=out.chat, telegram_payment_charge_id=m.charge_id)
    except TelegramBadRequest as e:
        if "ALREADY_REFUNDED" not in e.message:  # a retry after the refund went through is fine
            await refund_alert(out, m, f"was refused by Telegram ({e.message})")
            raise
    except TelegramForbiddenError as e:
        # Refusing a refund says nothing about the payer having blocked the bot: a permanent refusal like
        # any other (the admins refund by hand), and the payer is not marked as blocked.
        await refund_alert(out, m, f"was refused by Telegram ({e.message})")
        raise TelegramBadRequest(method=e.method, message=e.message) from e
    await out.services.refunds.complete_refund(m.provider, m.charge_id, actor="telegram")
    reason = tr(f"refund-reason-{m.reason or 'admin'}")
    amount = format_amount(m.amount, m.currency)
    await out.bot.send_message(out.chat, tr("refund-done", amount=amount, ref=m.order_ref, reason=reason))


async def refund_made(out: Outgoing, m: RefundMade) -> None:
    """An admin returned the money by hand (fiat, a payment marked paid): tell the payer, as a refund the
    channel made is told."""
    reason = tr(f"refund-reason-{m.reason or 'admin'}")
    amount = format_amount(m.amount, m.currency)
    await out.bot.send_message(out.chat, tr("refund-done", amount=amount, ref=m.order_ref, reason=reason))


async def balance_returned(out: Outgoing, m: BalanceReturned) -> None:
    """A payment from the shop balance went back to it (the order was refunded): tell whoever paid."""
    reason = tr(f"refund-reason-{m.reason or 'admin'}")
    amount = format_amount(m.amount, m.currency)
    text = tr("refund-to-balance", amount=amount, ref=m.order_ref, reason=reason)
    await out.bot.send_message(out.chat, text)


async def refund_alert(out: Outgoing, m: RefundDue, what: str) -> None:
    """Tell the admins about a refund that needs a hand: order, amount, charge and payer (never a key)."""
    amount = format_amount(m.amount, m.currency)
    await out.alerts.notify(
        f"↩️ Refund of {html.escape(amount)} for order {html.escape(m.order_ref[:32])}"
        f" (charge {html.escape(m.charge_id)}, {html.escape(m.provider)},"
        f" payer chat {html.escape(out.item.external_id)}) {html.escape(what)}.",
        kind=f"refund:{m.charge_id}",
    )


async def broadcast(out: Outgoing, m: Broadcast) -> None:
    """An admin's broadcast, in HTML exactly as they previewed it (the same text, sent the same way)."""
    text = await out.services.broadcasts.text_to_send(m.broadcast_id)
    await out.bot.send_message(out.chat, text)


async def chat_reply(out: Outgoing, m: ChatReply) -> None:
    """An answer that came too late to be the reply itself (WeChat's passive replies; Telegram's bot
    answers as it goes, so none is written for Telegram today): its plain text, as it is."""
    await out.bot.send_message(out.chat, html.escape(m.text))


async def payout_paid(out: Outgoing, m: PayoutPaid) -> None:
    """Tell a distributor their withdrawal was paid, with the admin's payment reference."""
    text = tr(
        "payout-paid-message",
        id=m.payout_id,
        payout=format_amount(m.payout_amount, m.payout_currency),
        amount=format_amount(m.amount, m.currency),
        reference=m.reference,
    )
    await out.bot.send_message(out.chat, text)


async def payout_rejected(out: Outgoing, m: PayoutRejected) -> None:
    """Tell a distributor their withdrawal was rejected and why: the money is available again."""
    text = tr(
        "payout-rejected-message", id=m.payout_id, amount=format_amount(m.amount, m.currency), reason=m.reason
    )
    await out.bot.send_message(out.chat, text)


async def membership_reminder(out: Outgoing, m: MembershipReminder) -> None:
    """A membership's end coming (days left, the end in SHOP_TIMEZONE), or come: with Renew, the
    storefront's Buy button for the same product. Read as it is now: an order refunded, or renewed, since
    the reminder was written gets nothing (the outbox counts it as done), nor does a days-left stage whose
    membership ended before it went out (the expired stage says so, once)."""
    services = out.services
    due = await services.reminders.membership(m.order_ref, user_id=out.item.user_id)
    if due is None:
        return
    days = days_left(due.ends_at, services.ctx.clock.now())
    if m.stage != EXPIRED and days == 0:
        # "N days left" going out after the end (a busy outbox): the end is the expired stage's to tell,
        # written by the next run; telling it here too would tell it twice.
        return
    params = {
        "name": due.product_name,
        "ref": due.order_ref,
        "date": shop_time(due.ends_at, services.ctx.config.timezone),
        "days": days,
    }
    if m.stage == EXPIRED:
        text = tr("reminder-expired", **params)
    else:
        text = tr("reminder-last-day" if days == 1 else "reminder-days", **params)
    markup = keyboards.renew(due.product_id, due.quantity, fiat=due.currency != STARS)
    await out.bot.send_message(out.chat, text, reply_markup=markup)


async def invoice_reminder(out: Outgoing, m: InvoiceReminder) -> None:
    """An unpaid order's reservation running out: pay the invoice above before it does. Nothing once the
    order is paid, cancelled or expired."""
    services = out.services
    inv = await services.reminders.open_invoice(m.order_ref, user_id=out.item.user_id)
    if inv is None:
        return
    text = tr(
        "reminder-invoice",
        ref=inv.order_ref,
        name=inv.product_name,
        qty=inv.quantity,
        amount=format_amount(inv.amount, inv.currency),
        time=shop_time(inv.expires_at, services.ctx.config.timezone),
    )
    await out.bot.send_message(out.chat, text, reply_markup=keyboards.my_orders())


Deliverer = Callable[[Outgoing, Any], Awaitable[None]]

DELIVERERS: dict[type[Message], Deliverer] = {
    KeysDelivered: keys_delivered,
    AwaitingManual: awaiting_manual,
    RefundDue: refund_due,
    RefundMade: refund_made,
    BalanceReturned: balance_returned,
    Broadcast: broadcast,
    PayoutPaid: payout_paid,
    PayoutRejected: payout_rejected,
    MembershipReminder: membership_reminder,
    InvoiceReminder: invoice_reminder,
    PayoutReady: digests.payout_ready,
    PayoutQueueDue: digests.payout_queue,
    StockAlert: digests.stock_alert,
    DailySummary: digests.daily_summary,
    ChatReply: chat_reply,
}


async def deliver(out: Outgoing) -> None:
    deliverer = DELIVERERS.get(type(out.item.message))
    if deliverer is None:
        raise LookupError(f"no Telegram deliverer for outbox message type {out.item.kind!r}")
    await deliverer(out, out.item.message)


async def gave_up(out: Outgoing, error: str) -> None:
    """The sender stopped retrying a message: what the admins must hear, if anything."""
    if isinstance(out.item.message, RefundDue):
        await refund_alert(
            out, out.item.message, f"kept failing ({error}); retries gave up: refund it by hand"
        )
