"""How each typed outbox message (``core.messages``) reaches a WeChat user: one renderer per type, all in
``RENDERERS``. A type without one fails ``tests/unit/wechat/test_messages.py``, never a buyer.

A renderer reads what it needs (it runs when the message is sent, not when it was written) and returns the
message's **steps**: plain texts, each within WeChat's ``TEXT_MAX_BYTES``, and for a refund through WeChat
Pay the step that pays it back (``PayBack``), which the sender hands to the injected refund call. An empty
list: nothing to say any more (a reminder for an order renewed since), and the outbox counts it as done.
Steps are the same each time a message is rendered again, so one taken up after a retry or a park goes on
from the first step not done (``OutboxMessage.progress``).

Texts are in the user's language (``zh_CN`` unless they chose ``en``), from the ``wx-*`` catalog keys;
the admins' messages reuse Telegram's texts with their markup taken out (``Texts.tr_from_html``).
Renderers raise what the core raised (an order refunded meanwhile: ``ShopError``); the sender decides
what it means."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from core.errors import InvalidOrderState
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
from core.models import Order, OrderStatus, Product
from core.repositories.reminders import Membership
from core.services import Services
from core.services.outbox import OutboxMessage
from core.services.reminders import EXPIRED, days_left
from core.windows import WECHAT_PAY
from handlers.money import format_amount
from handlers.wechat import staff_messages
from handlers.wechat.parts import keys_as_text, keys_in_parts, marked, split_text
from handlers.wechat.texts import DEFAULT_LANGUAGE, LANGUAGES, Texts, fit

log = logging.getLogger(__name__)

KEY_MESSAGES_MAX = 3  # keys go as text when they fit in this many messages; beyond, the order page
KEYS_AS_TEXT_MAX = 60  # an order of more keys gets the order page without its keys being decrypted here
ORDER_PAGE = "/order/"  # {pages}/order/<ref>: the buyer sees the keys there (OAuth)


class Alerts(Protocol):
    """Where the admins hear what needs a hand (``handlers.telegram.alerts.AdminAlerts`` fits): ``text``
    is HTML, ``kind`` groups repeats."""

    async def notify(self, text: str, *, kind: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class PayBack:
    """The step of a ``RefundDue`` that pays the charge back through WeChat Pay (the sender's
    ``pay_back``): done once, recorded as soon as it is."""

    message: RefundDue


@dataclass(frozen=True, slots=True)
class AdminAlert:
    """A step that tells the admins (``text``: HTML, ``kind``: as ``Alerts.notify`` takes them): done
    once, recorded as soon as it is, whatever the user's window."""

    text: str
    kind: str


Step = str | PayBack | AdminAlert
# Types whose first step needs no window (money back, the admins told): taken even when the user's window
# is known to be closed; their texts then wait like any other.
ACTS_FIRST: tuple[type[Message], ...] = (RefundDue, AwaitingManual)


@dataclass(frozen=True, slots=True)
class WxOutgoing:
    """One claimed outbox row on its way to a WeChat user, with what rendering it needs."""

    services: Services
    texts: Texts
    item: OutboxMessage
    # where the shop's WeChat pages are (WECHAT_PUBLIC_URL + WECHAT_CALLBACK_PATH: https://…/wechat), for
    # the order page; None: no pages (no WeChat Pay)
    public_url: str | None = None
    alerts: Alerts | None = None

    @property
    def language(self) -> str:
        lang = self.item.language
        return lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def tr(self, key: str, /, **params: Any) -> str:
        return self.texts.tr(self.language, key, **params)

    def money(self, minor: int, currency: str) -> str:
        return format_amount(minor, currency, self.language)

    def time(self, at: datetime) -> str:
        return shop_time(at, self.services.ctx.config.timezone)

    async def alert(self, text: str, kind: str) -> None:
        if self.alerts is None:
            log.error("outbox %s (%s) needs the admins and no alerts are wired: %s", self.item.id, kind, text)
            return
        await self.alerts.notify(text, kind=kind)


def shop_time(at: datetime, timezone: ZoneInfo) -> str:
    """A moment in the shop's time zone, named (``2026-11-25 14:00 (Asia/Shanghai)``)."""
    return f"{at.astimezone(timezone):%Y-%m-%d %H:%M} ({timezone.key})"


# ---------------------------------------------------------------- keys


async def keys_delivered(out: WxOutgoing, m: KeysDelivered) -> list[Step]:
    """The keys as text when they fit in ``KEY_MESSAGES_MAX`` messages and WeChat shows each exactly;
    otherwise the order page (decrypted there, audited, for the buyer OAuth identifies); without a page,
    every key in as many ≤ 2 KB messages as it takes, the buyer told to write (``订单``) for the rest if
    their window closes before the last. Keys shown here are revealed (and audited) as Telegram's are."""
    services, user_id = out.services, out.item.user_id
    order = await services.orders.get(m.order_ref, user_id=user_id)
    if order.status is not OrderStatus.DELIVERED:
        raise InvalidOrderState(status=str(order.status))
    if out.public_url is not None and order.quantity > KEYS_AS_TEXT_MAX:
        product = await services.catalog.product(order.product_id)
        return [_keys_link(out, order, product, order.quantity)]
    shown = await services.orders.reveal(m.order_ref, user_id=user_id, actor="outbox", reason="delivery")
    head = _keys_head(out, shown.order, shown.product)
    as_text = keys_as_text(head, shown.keys, KEY_MESSAGES_MAX)
    if as_text is not None:
        return list(as_text)
    if out.public_url is not None:
        return [_keys_link(out, shown.order, shown.product, len(shown.keys))]
    hint = out.tr("wx-keys-in-parts", count=len(shown.keys))
    if any(marked(k) != k for k in shown.keys):
        hint += "\n" + out.tr("wx-keys-marked")
    return list(keys_in_parts(f"{head}\n{hint}", shown.keys))


def _keys_head(out: WxOutgoing, order: Order, product: Product) -> str:
    head = out.tr("wx-keys-head", ref=order.ref, name=product.name, qty=order.quantity)
    if order.membership_expires_at is not None:
        head += "\n" + out.tr("wx-keys-valid-until", date=out.time(order.membership_expires_at))
    return head


def _keys_link(out: WxOutgoing, order: Order, product: Product, count: int) -> str:
    assert out.public_url is not None
    url = f"{out.public_url.rstrip('/')}{ORDER_PAGE}{quote(order.ref, safe='')}"
    return _keys_head(out, order, product) + "\n" + out.tr("wx-keys-link", count=count, url=url)


# ---------------------------------------------------------------- orders and money


async def awaiting_manual(out: WxOutgoing, m: AwaitingManual) -> list[Step]:
    """The admins hear that the paid order waits for them (once: a step), then the buyer."""
    alert = AdminAlert(
        f"🧾 manual order {html.escape(m.order_ref)} is paid (WeChat)", f"manual:{m.order_ref}"
    )
    return [alert, out.tr("wx-awaiting-manual", ref=m.order_ref)]


async def refund_due(out: WxOutgoing, m: RefundDue) -> list[Step]:
    """A WeChat Pay charge goes back through WeChat Pay (``PayBack``), then the payer is told it is on its
    way (WeChat Pay confirms a refund later, by its notify). Any other provider's charge cannot be paid
    back from here: the admins get the details to do it by hand, the payer hears once it is done."""
    if m.provider != WECHAT_PAY:
        amount = format_amount(m.amount, m.currency)
        alert = AdminAlert(
            f"↩️ Refund of {html.escape(amount)} for order {html.escape(m.order_ref[:32])}"
            f" (charge {html.escape(m.charge_id)}, {html.escape(m.provider)}, WeChat payer"
            f" {html.escape(out.item.external_id)}) must be refunded by hand.",
            f"refund:{m.charge_id}",
        )
        return [alert]
    text = out.tr(
        "wx-refund-on-its-way",
        amount=out.money(m.amount, m.currency),
        ref=m.order_ref,
        reason=_reason(out, m.reason),
    )
    return [PayBack(m), text]


async def refund_made(out: WxOutgoing, m: RefundMade) -> list[Step]:
    amount = out.money(m.amount, m.currency)
    return [out.tr("wx-refund-done", amount=amount, ref=m.order_ref, reason=_reason(out, m.reason))]


async def balance_returned(out: WxOutgoing, m: BalanceReturned) -> list[Step]:
    amount = out.money(m.amount, m.currency)
    return [out.tr("wx-refund-to-balance", amount=amount, ref=m.order_ref, reason=_reason(out, m.reason))]


def _reason(out: WxOutgoing, reason: str | None) -> str:
    return out.texts.tr(out.language, f"refund-reason-{reason or 'admin'}")


async def broadcast(out: WxOutgoing, m: Broadcast) -> list[Step]:
    """An admin's broadcast, written in Telegram's HTML: as the plain text it shows, in ≤ 2 KB parts."""
    text = await out.services.broadcasts.text_to_send(m.broadcast_id)
    return list(split_text(html_to_text(text)))


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LINK = re.compile(r"""<a\s[^>]*href=["']([^"']*)["'][^>]*>(.*?)</a>""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def html_to_text(text: str) -> str:
    """What a Telegram HTML text shows, as plain text: tags out, a link's address after its words,
    entities decoded (so ``&amp;`` is ``&`` again)."""
    text = _BREAK.sub("\n", text)
    text = _LINK.sub(
        lambda mt: mt.group(2) if mt.group(1) in mt.group(2) else f"{mt.group(2)} ({mt.group(1)})", text
    )
    return html.unescape(_TAG.sub("", text)).strip()


async def chat_reply(out: WxOutgoing, m: ChatReply) -> list[Step]:
    """The dialogue's answer that came after WeChat stopped waiting for it (``handlers.wechat.callback``):
    the text the passive reply would have carried, as it is."""
    return [fit(m.text)]


# ---------------------------------------------------------------- distributors


async def payout_paid(out: WxOutgoing, m: PayoutPaid) -> list[Step]:
    text = out.tr(
        "wx-payout-paid",
        id=m.payout_id,
        payout=out.money(m.payout_amount, m.payout_currency),
        amount=out.money(m.amount, m.currency),
        reference=m.reference,
    )
    return [text]


async def payout_rejected(out: WxOutgoing, m: PayoutRejected) -> list[Step]:
    amount = out.money(m.amount, m.currency)
    return [out.tr("wx-payout-rejected", id=m.payout_id, amount=amount, reason=m.reason)]


async def payout_ready(out: WxOutgoing, m: PayoutReady) -> list[Step]:
    amount = out.money(m.amount, m.currency)
    if m.currency != m.payout_currency:  # Stars: what they pay, too
        payout = out.money(m.payout_amount, m.payout_currency)
        amount = out.texts.tr(out.language, "withdraw-worth", amount=amount, payout=payout)
    return [out.tr("wx-payout-ready", amount=amount)]


# ---------------------------------------------------------------- reminders


async def due_membership(out: WxOutgoing, m: MembershipReminder) -> Membership | None:
    """What a membership reminder is about, read as it is now; None when there is nothing to remind of any
    more: the order was refunded or renewed since, or a days-left stage goes out after the end."""
    due = await out.services.reminders.membership(m.order_ref, user_id=out.item.user_id)
    if due is None:
        return None
    if m.stage != EXPIRED and days_left(due.ends_at, out.services.ctx.clock.now()) == 0:
        return None
    return due


async def membership_reminder(out: WxOutgoing, m: MembershipReminder) -> list[Step]:
    """As Telegram's (``due_membership``); renewing is buying the product again (``商品``). Outside the
    window it may go as a template message instead (``handlers.wechat.templates``)."""
    due = await due_membership(out, m)
    if due is None:
        return []
    days = days_left(due.ends_at, out.services.ctx.clock.now())
    params = {"name": due.product_name, "ref": due.order_ref, "date": out.time(due.ends_at), "days": days}
    if m.stage == EXPIRED:
        return [out.tr("wx-reminder-expired", **params)]
    return [out.tr("wx-reminder-last-day" if days == 1 else "wx-reminder-days", **params)]


async def invoice_reminder(out: WxOutgoing, m: InvoiceReminder) -> list[Step]:
    inv = await out.services.reminders.open_invoice(m.order_ref, user_id=out.item.user_id)
    if inv is None:
        return []
    text = out.tr(
        "wx-reminder-invoice",
        ref=inv.order_ref,
        name=inv.product_name,
        qty=inv.quantity,
        amount=out.money(inv.amount, inv.currency),
        time=out.time(inv.expires_at),
    )
    return [text]


Renderer = Callable[[WxOutgoing, Any], Awaitable[list[Step]]]

RENDERERS: dict[type[Message], Renderer] = {
    KeysDelivered: keys_delivered,
    AwaitingManual: awaiting_manual,
    RefundDue: refund_due,
    RefundMade: refund_made,
    BalanceReturned: balance_returned,
    Broadcast: broadcast,
    PayoutPaid: payout_paid,
    PayoutRejected: payout_rejected,
    PayoutReady: payout_ready,
    MembershipReminder: membership_reminder,
    InvoiceReminder: invoice_reminder,
    PayoutQueueDue: staff_messages.payout_queue,
    StockAlert: staff_messages.stock_alert,
    DailySummary: staff_messages.daily_summary,
    ChatReply: chat_reply,
}


async def render(out: WxOutgoing) -> list[Step]:
    renderer = RENDERERS.get(type(out.item.message))
    if renderer is None:
        raise LookupError(f"no WeChat renderer for outbox message type {out.item.kind!r}")
    return await renderer(out, out.item.message)


async def gave_up(out: WxOutgoing, error: str, progress: int) -> None:
    """The sender stopped retrying a message (its first ``progress`` steps done): what the admins must
    hear, if anything. A refund whose money went back (its text failed) needs no hand."""
    m = out.item.message
    if isinstance(m, RefundDue) and progress == 0:
        amount = format_amount(m.amount, m.currency)
        await out.alert(
            f"↩️ Refund of {html.escape(amount)} for order {html.escape(m.order_ref[:32])}"
            f" (charge {html.escape(m.charge_id)}, {html.escape(m.provider)}, WeChat payer"
            f" {html.escape(out.item.external_id)}) kept failing ({html.escape(error)}); retries gave up:"
            " refund it by hand.",
            f"refund:{m.charge_id}",
        )
