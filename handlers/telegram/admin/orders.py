"""Orders in the back office (owners, admins, and operators within their scope):

    /order REF              one order: state, product, buyer, times, payments, audit trail, keys masked
    /order TELEGRAM_ID      a buyer's orders, newest first (also i:IMPORT_ID: orders given a key of an import)
    /orders_pending         paid manual orders waiting for an admin, and refunds not done yet

Lists show PAGE_SIZE orders a page, newest first, with ◀️ N/M ▶️ (OrderListCb: the list's kind and key,
and the order the page starts from): each tap reads one page within the admin's scope, so a forged page of
a buyer or an import outside an operator's scope lists nothing of it.

An order's buttons follow its state and the admin's role: deliver by hand, resend the delivery, cancel a
pending order, refund and "mark paid" (money: owners and admins only). Every tap re-reads the order and
acts only if the action still fits; cancel, refund and mark paid ask first. The core re-checks the scope
and the role in the transaction that acts: an order outside an operator's scope is "not found".

Deliver by hand, mark paid and "refunded by hand" wait for the admin's next message (an FSM state): the
item to deliver (sent at once, never kept in the FSM storage: it is a key), the amount received and a
note, or the note of a refund the admin made outside the chat (both confirmed first). A payment marked
paid earns the buyer's referrers no commission unless the admin confirms it "with commission" (the
second button of the confirmation). "Refunded by hand"
shows on an order with a charge owed back that the channel cannot pay back (fiat, a payment marked paid);
confirmed, the core records it as returned and the order leaves /orders_pending."""

from __future__ import annotations

import re

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.errors import NotPermitted
from core.models import PaymentStatus
from core.roles import Grant, Power
from core.services import Services
from core.services.order_desk import OrderDetail, OrderList
from handlers.money import format_amount, parse_amount
from handlers.telegram.admin.common import actor, not_permitted
from handlers.telegram.admin.filters import CHANNEL, Has
from handlers.telegram.admin.order_text import (
    ACTIONS,
    LIST_KINDS,
    amount,
    applies,
    confirm_markup,
    list_markup,
    list_text,
    order_markup,
    order_text,
    owed_text,
)
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import AdminCb, OrderActCb, OrderInputCb, OrderListCb, OrderViewCb
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, redraw, show, tr, tr_plain

_PAID = re.compile(r"([0-9][0-9.,]{0,24})\s+(.+)", re.DOTALL)
_NOT_A_COMMAND = When(F.text.regexp(r"^[^/]"))


class OrderInput(StatesGroup):
    content = State()  # the item for a manual delivery
    payment = State()  # "9.90 note" for mark paid
    refund_note = State()  # the note of a refund made by hand


async def _show_order(event: Message | CallbackQuery, services: Services, grant: Grant, ref: str) -> None:
    detail = await services.order_desk.detail(ref, grant=grant)
    tz = services.ctx.config.timezone
    await show(event, order_text(detail, tz), order_markup(detail, grant))


async def order_command(message: Message, command: CommandObject, services: Services, grant: Grant) -> None:
    """Receives: /order REF | TELEGRAM_ID | i:IMPORT_ID."""
    query = " ".join((command.args or "").split())
    if not query:
        await message.answer(tr("admin-order-usage"))
        return
    found = await services.order_desk.search(query, channel=CHANNEL, grant=grant)
    tz = services.ctx.config.timezone
    if isinstance(found, OrderDetail):
        await message.answer(order_text(found, tz), reply_markup=order_markup(found, grant))
        return
    title = tr("admin-orders-found", query=query[:40])
    await message.answer(list_text(found, title, tz), reply_markup=list_markup(found))


async def pending_screen(event: Message | CallbackQuery, services: Services, grant: Grant) -> None:
    """Receives: /orders_pending, and the menu's Orders button."""
    await _show_list(event, services, await services.order_desk.pending(grant=grant))


async def _show_list(event: Message | CallbackQuery, services: Services, found: OrderList) -> None:
    tz = services.ctx.config.timezone
    if found.kind == "pending":
        text = list_text(found, tr("admin-orders-pending-title"), tz) + "\n\n" + tr("admin-order-usage")
    else:
        who = found.lines[0].buyer_external_id if found.lines else f"#{found.key}"
        query = who if found.kind == "buyer" else f"i:{found.key}"
        text = list_text(found, tr("admin-orders-found", query=query), tz)
    await show(event, text, list_markup(found))


async def page_button(
    query: CallbackQuery, callback_data: OrderListCb, services: Services, grant: Grant
) -> None:
    """Receives: ◀️ N/M ▶️ under an order list."""
    cb = callback_data
    found = await services.order_desk.page(
        LIST_KINDS[cb.kind],
        cb.key,
        grant=grant,
        page=cb.page,
        before=0 if cb.back else cb.at,
        after=cb.at if cb.back else 0,
    )
    await _show_list(query, services, found)


async def view_button(
    query: CallbackQuery, callback_data: OrderViewCb, services: Services, grant: Grant
) -> None:
    """Receives: an order's button in a list, Refresh and Back on an order's screens."""
    await _show_order(query, services, grant, callback_data.ref)


async def action_button(
    query: CallbackQuery, callback_data: OrderActCb, services: Services, grant: Grant, state: FSMContext
) -> None:
    """Receives: an order's action buttons, and their confirmations (``sure``)."""
    ref, act = callback_data.ref, callback_data.act
    detail = await services.order_desk.detail(ref, grant=grant)  # not found outside the scope
    power, _ = ACTIONS[act]
    if not grant.may(power):
        await not_permitted(query, services, query.data or "")
        return
    if not applies(act, detail):
        status = tr_plain(f"status-{detail.order.status.value}")
        await acknowledge(
            query, tr_plain("admin-order-stale", status=status, limit=CALLBACK_ANSWER_MAX), show_alert=True
        )
        await redraw(query, order_text(detail, services.ctx.config.timezone), order_markup(detail, grant))
        return
    if act == "deliver":
        await state.set_state(OrderInput.content)
        await state.set_data({"ref": ref})
        await show(query, tr("admin-order-deliver-ask", ref=ref), _stop_markup(ref))
        return
    if act == "paid":
        await state.set_state(OrderInput.payment)
        await state.set_data({"ref": ref})
        await show(query, tr("admin-order-paid-ask", ref=ref, amount=amount(detail.order)), _stop_markup(ref))
        return
    if act == "byhand":
        await _by_hand(query, callback_data, services, grant, state, detail)
        return
    if act == "resend":
        await services.order_desk.resend(ref, grant=grant, actor=actor(query))
        await acknowledge(query, tr_plain("admin-order-resent", limit=CALLBACK_ANSWER_MAX))
        await redraw(query, *_screen(await services.order_desk.detail(ref, grant=grant), services, grant))
        return
    if not callback_data.sure:
        key = f"admin-order-{act}-confirm"
        await show(query, tr(key, ref=ref, amount=amount(detail.order)), confirm_markup(ref, act))
        return
    try:
        if act == "cancel":
            await services.order_desk.cancel(ref, grant=grant, actor=actor(query))
        else:
            await services.order_desk.refund(ref, grant=grant, actor=actor(query))
    except NotPermitted:
        await not_permitted(query, services, query.data or "")
        return
    await acknowledge(query, tr_plain(f"admin-order-{act}-done", limit=CALLBACK_ANSWER_MAX))
    await redraw(query, *_screen(await services.order_desk.detail(ref, grant=grant), services, grant))


async def _by_hand(
    query: CallbackQuery,
    callback_data: OrderActCb,
    services: Services,
    grant: Grant,
    state: FSMContext,
    detail: OrderDetail,
) -> None:
    """The "Refunded by hand" button asks for the note; once it is typed (``refund_note_typed``), its
    confirmation (``sure``) records the refund."""
    ref = callback_data.ref
    if not callback_data.sure:
        await state.set_state(OrderInput.refund_note)
        await state.set_data({"ref": ref})
        await show(query, tr("admin-order-byhand-ask", ref=ref, amount=owed_text(detail)), _stop_markup(ref))
        return
    data = await state.get_data()
    note = data.get("refund_note")  # not mark paid's "note": a note is confirmed for its own action only
    if data.get("ref") != ref or not isinstance(note, str):
        await acknowledge(
            query, tr_plain("admin-order-input-stale", limit=CALLBACK_ANSWER_MAX), show_alert=True
        )
        return
    try:
        done = await services.order_desk.refund_by_hand(ref, note, grant=grant, actor=actor(query))
    except NotPermitted:
        await not_permitted(query, services, query.data or "")
        return
    await state.clear()
    key = "admin-order-byhand-done" if done.payments else "admin-order-byhand-replay"
    await acknowledge(query, tr_plain(key, limit=CALLBACK_ANSWER_MAX), show_alert=not done.payments)
    await redraw(query, *_screen(await services.order_desk.detail(ref, grant=grant), services, grant))


def _screen(detail: OrderDetail, services: Services, grant: Grant) -> tuple[str, InlineKeyboardMarkup]:
    return order_text(detail, services.ctx.config.timezone), order_markup(detail, grant)


def _stop_markup(ref: str) -> InlineKeyboardMarkup:
    stop = InlineKeyboardButton(
        text=tr_plain("admin-btn-order-stop"), callback_data=OrderInputCb(ref=ref, act="stop").pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[stop]])


async def delivery_content(message: Message, services: Services, grant: Grant, state: FSMContext) -> None:
    """Receives: the admin's next message after "Deliver by hand": the item, delivered at once."""
    ref = str((await state.get_data()).get("ref", ""))
    await state.clear()
    await services.order_desk.deliver(ref, message.text or "", grant=grant, actor=actor(message))
    detail = await services.order_desk.detail(ref, grant=grant)
    text, markup = _screen(detail, services, grant)
    await message.answer(tr("admin-order-delivered-done", ref=ref) + "\n\n" + text, reply_markup=markup)


async def payment_typed(message: Message, services: Services, grant: Grant, state: FSMContext) -> None:
    """Receives: the admin's next message after "Mark paid": the amount received and a note."""
    ref = str((await state.get_data()).get("ref", ""))
    detail = await services.order_desk.detail(ref, grant=grant)
    order = detail.order
    m = _PAID.fullmatch((message.text or "").strip())
    if m is None:
        await message.answer(
            tr("admin-order-paid-ask", ref=ref, amount=amount(order)), reply_markup=_stop_markup(ref)
        )
        return
    received = parse_amount(m.group(1), order.currency)
    if received != order.amount:
        await message.answer(
            tr(
                "admin-order-paid-mismatch",
                received=format_amount(received, order.currency),
                amount=amount(order),
            ),
            reply_markup=_stop_markup(ref),
        )
        return
    note = " ".join(m.group(2).split())[:200]
    await state.update_data(amount=received, note=note)
    sure = InlineKeyboardButton(
        text=tr_plain("admin-btn-order-paid-sure"), callback_data=OrderInputCb(ref=ref, act="paid").pack()
    )
    with_commission = InlineKeyboardButton(
        text=tr_plain("admin-btn-order-paid-commission"),
        callback_data=OrderInputCb(ref=ref, act="paid_commission").pack(),
    )
    stop = _stop_markup(ref).inline_keyboard[0]
    await message.answer(
        tr("admin-order-paid-confirm", ref=ref, amount=amount(order), note=note),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[sure], [with_commission], stop]),
    )


async def refund_note_typed(message: Message, services: Services, grant: Grant, state: FSMContext) -> None:
    """Receives: the admin's next message after "Refunded by hand": the note (e.g. the transfer's id)."""
    ref = str((await state.get_data()).get("ref", ""))
    detail = await services.order_desk.detail(ref, grant=grant)  # not found outside the scope
    note = " ".join((message.text or "").split())[:200]
    if not note:
        await message.answer(
            tr("admin-order-byhand-ask", ref=ref, amount=owed_text(detail)), reply_markup=_stop_markup(ref)
        )
        return
    await state.update_data(refund_note=note)
    sure = InlineKeyboardButton(
        text=tr_plain("admin-btn-order-byhand-sure"),
        callback_data=OrderActCb(ref=ref, act="byhand", sure=True).pack(),
    )
    stop = _stop_markup(ref).inline_keyboard[0]
    await message.answer(
        tr("admin-order-byhand-confirm", ref=ref, amount=owed_text(detail), note=note),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[sure], stop]),
    )


async def input_button(
    query: CallbackQuery, callback_data: OrderInputCb, services: Services, grant: Grant, state: FSMContext
) -> None:
    """Receives: Confirm (or Confirm with commission) on a typed payment, and Stop while the bot waits for
    an admin's input."""
    ref = callback_data.ref
    await services.order_desk.detail(ref, grant=grant)  # not found outside the scope
    data = await state.get_data()
    if callback_data.act == "stop":
        if data.get("ref") == ref:
            await state.clear()
        await _show_order(query, services, grant, ref)
        return
    received, note = data.get("amount"), data.get("note")
    if data.get("ref") != ref or not isinstance(received, int) or not isinstance(note, str):
        await acknowledge(
            query, tr_plain("admin-order-input-stale", limit=CALLBACK_ANSWER_MAX), show_alert=True
        )
        return
    try:
        result = await services.order_desk.mark_paid(
            ref,
            received,
            note,
            grant=grant,
            actor=actor(query),
            with_commission=callback_data.act == "paid_commission",
        )
    except NotPermitted:
        await not_permitted(query, services, query.data or "")
        return
    await state.clear()
    if result.replay:
        key = "admin-order-paid-replay"
    elif result.outcome is PaymentStatus.ACCEPTED:
        key = "admin-order-paid-done"
    else:
        key = "admin-order-paid-owed"
    await acknowledge(
        query, tr_plain(key, limit=CALLBACK_ANSWER_MAX), show_alert=key != "admin-order-paid-done"
    )
    await redraw(query, *_screen(await services.order_desk.detail(ref, grant=grant), services, grant))


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.ORDERS))
    router.callback_query.filter(Has(Power.ORDERS))
    router.message.register(order_command, Command("order"))
    router.message.register(pending_screen, Command("orders_pending"))
    router.callback_query.register(pending_screen, AdminCb.filter(F.screen == "orders"))
    router.callback_query.register(view_button, OrderViewCb.filter())
    router.callback_query.register(page_button, OrderListCb.filter())
    router.callback_query.register(action_button, OrderActCb.filter())
    router.callback_query.register(input_button, OrderInputCb.filter())
    router.message.register(delivery_content, StateFilter(OrderInput.content), _NOT_A_COMMAND)
    router.message.register(payment_typed, StateFilter(OrderInput.payment), _NOT_A_COMMAND)
    router.message.register(refund_note_typed, StateFilter(OrderInput.refund_note), _NOT_A_COMMAND)
    return router
