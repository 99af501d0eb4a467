"""/payouts (owners and admins: ``Power.MONEY``): the queue of distributors' withdrawal requests.

Open requests, oldest first, PAGE_SIZE a page (◀️ ▶️), each with who asked, the amount withdrawn, what to
pay in the shop currency and the payout details the distributor typed (personal data: shown here, never
logged). A requested one has **Approve** and **Reject**; an approved one **Mark paid** and **Reject**.
Reject waits for the reason and Mark paid for the payment's reference (an FSM state, Stop leaves), both
confirmed before anything happens. Every decision is one status-guarded transaction in the core: of two
admins tapping at once one decides, the other is told it was decided and sees the queue as it is now. A
request a refund took commission back from since it was made says so (pay it and the shop pays that out),
and is not approved: rejecting it nets the clawback."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.errors import PayoutAlreadyDecided, PayoutTextInvalid, PayoutUncovered
from core.models import PayoutStatus
from core.repositories.payouts import PayoutLine
from core.roles import Power
from core.services import Services
from core.services.payouts import MAX_REASON, MAX_REFERENCE, PayoutQueue, typed_text
from handlers.money import format_amount
from handlers.telegram.admin.common import actor, back_to_menu
from handlers.telegram.admin.filters import Has
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import MAX_PAGE, PayoutAct, PayoutCb
from handlers.telegram.ui.text import (
    CALLBACK_ANSWER_MAX,
    acknowledge,
    redraw,
    refusal,
    show,
    tr,
    tr_plain,
)

PAGE_SIZE = 5


class PayoutInput(StatesGroup):
    reason = State()  # why a request is rejected
    reference = State()  # the reference of the payment made


# What each action waits for: its state, the FSM field, the length limit, the locale key's stem.
_ASKS = {
    "reject": (PayoutInput.reason, "reason", MAX_REASON, "admin-payout-reject"),
    "paid": (PayoutInput.reference, "reference", MAX_REFERENCE, "admin-payout-paid"),
}


def _cb(action: PayoutAct, payout_id: int = 0, page: int = 0) -> str:
    return PayoutCb(action=action, payout_id=payout_id, page=page).pack()


def _money(line: PayoutLine) -> dict[str, str]:
    p = line.payout
    return {
        "id": str(p.id),
        "amount": format_amount(p.amount, p.currency),
        "payout": format_amount(p.payout_amount, p.payout_currency),
    }


def _who(line: PayoutLine) -> str:
    return f"{line.external_id} (@{line.username})" if line.username else line.external_id


def entry_text(line: PayoutLine, services: Services) -> str:
    p = line.payout
    tz = services.ctx.config.timezone
    lines = [
        tr(
            "admin-payout-line",
            status=tr_plain(f"payout-status-{p.status.value}"),
            at=p.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            who=_who(line),
            **_money(line),
        ),
        tr("admin-payout-details", details=p.details),
    ]
    if p.status is PayoutStatus.APPROVED and p.decided_by:
        lines.append(tr("admin-payout-approved-by", who=p.decided_by))
    if p.open and line.available < 0:  # a refund took commission back since: paying it pays that out
        lines.append(tr("admin-payout-uncovered", owed=format_amount(-line.available, p.currency)))
    return "\n".join(lines)


def queue_view(q: PayoutQueue, services: Services) -> tuple[str, InlineKeyboardMarkup]:
    title = tr("admin-payouts-title", count=q.total)
    body = [entry_text(line, services) for line in q.lines] or [tr("admin-payouts-none")]
    rows: list[list[InlineKeyboardButton]] = []
    for line in q.lines:
        p = line.payout
        act: PayoutAct = "approve" if p.status is PayoutStatus.REQUESTED else "paid"
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr_plain(f"admin-btn-payout-{act}", id=p.id), callback_data=_cb(act, p.id, q.page)
                ),
                InlineKeyboardButton(
                    text=tr_plain("admin-btn-payout-reject", id=p.id),
                    callback_data=_cb("reject", p.id, q.page),
                ),
            ]
        )
    nav = []
    if q.page > 0:
        nav.append(InlineKeyboardButton(text="◀️", callback_data=_cb("list", page=q.page - 1)))
    nav.append(
        InlineKeyboardButton(
            text=tr_plain("admin-btn-payouts-refresh"), callback_data=_cb("list", page=q.page)
        )
    )
    if q.has_more and q.page < MAX_PAGE:
        nav.append(InlineKeyboardButton(text="▶️", callback_data=_cb("list", page=q.page + 1)))
    rows += [nav, [back_to_menu()]]
    return "\n\n".join([title, *body]), InlineKeyboardMarkup(inline_keyboard=rows)


async def _queue(services: Services, page: int) -> tuple[str, InlineKeyboardMarkup]:
    q = await services.payouts.queue(page, PAGE_SIZE)
    if not q.lines and page > 0:  # the page emptied meanwhile (decisions): the first page instead
        q = await services.payouts.queue(0, PAGE_SIZE)
    return queue_view(q, services)


async def payouts_command(message: Message, services: Services, state: FSMContext) -> None:
    """Receives: /payouts."""
    if await state.get_state() in PayoutInput:
        await state.clear()
    await show(message, *await _queue(services, 0))


async def page_button(query: CallbackQuery, callback_data: PayoutCb, services: Services) -> None:
    """Receives: ◀️, ▶️ and Refresh of the queue."""
    await show(query, *await _queue(services, callback_data.page))


async def _decided_first(
    query: CallbackQuery, services: Services, e: PayoutAlreadyDecided, page: int
) -> None:
    await acknowledge(query, refusal(e, plain=True), show_alert=True)
    await redraw(query, *await _queue(services, page))


async def approve(query: CallbackQuery, callback_data: PayoutCb, services: Services) -> None:
    """Receives: Approve under a requested withdrawal (no money moves: it was set aside when asked)."""
    try:
        p = await services.payouts.approve(callback_data.payout_id, actor=actor(query))
    except PayoutAlreadyDecided as e:
        await _decided_first(query, services, e, callback_data.page)
        return
    except PayoutUncovered as e:
        owed = format_amount(e.params["owed"], e.params["currency"])
        await acknowledge(query, tr_plain(e.key, payout_id=e.params["payout_id"], owed=owed), show_alert=True)
        await redraw(query, *await _queue(services, callback_data.page))
        return
    await acknowledge(query, tr_plain("admin-payout-approved", id=p.id, limit=CALLBACK_ANSWER_MAX))
    await redraw(query, *await _queue(services, callback_data.page))


def _stop_markup(payout_id: int, page: int) -> InlineKeyboardMarkup:
    stop = InlineKeyboardButton(
        text=tr_plain("admin-btn-payout-stop"), callback_data=_cb("stop", payout_id, page)
    )
    return InlineKeyboardMarkup(inline_keyboard=[[stop]])


async def ask(query: CallbackQuery, callback_data: PayoutCb, services: Services, state: FSMContext) -> None:
    """Receives: Reject or Mark paid: wait for the reason or the payment's reference."""
    line = await services.payouts.line(callback_data.payout_id)  # not found: the error handler says so
    wanted = (
        (PayoutStatus.REQUESTED, PayoutStatus.APPROVED)
        if callback_data.action == "reject"
        else (PayoutStatus.APPROVED,)
    )
    if line.payout.status not in wanted:
        await _decided_first(
            query, services, PayoutAlreadyDecided(payout_id=line.payout.id), callback_data.page
        )
        return
    st, _field, limit, stem = _ASKS[callback_data.action]
    await state.set_state(st)
    await state.set_data({"payout_id": line.payout.id, "page": callback_data.page})
    text = tr(f"{stem}-ask", max=limit, **_money(line)) + "\n\n" + entry_text(line, services)
    await show(query, text, _stop_markup(line.payout.id, callback_data.page))


async def typed(message: Message, services: Services, state: FSMContext) -> None:
    """Receives: the admin's next message after Reject (the reason) or Mark paid (the reference)."""
    current = await state.get_state()
    action = "reject" if current == PayoutInput.reason.state else "paid"
    _st, field, limit, stem = _ASKS[action]
    data = await state.get_data()
    payout_id, page = data.get("payout_id"), data.get("page", 0)
    if not isinstance(payout_id, int) or not isinstance(page, int):
        await state.clear()
        await message.answer(tr("admin-payout-input-stale"))
        return
    try:
        text = typed_text(message.text or "", limit)
    except PayoutTextInvalid:
        await message.answer(
            tr("admin-payout-text-invalid", max=limit), reply_markup=_stop_markup(payout_id, page)
        )
        return
    await state.update_data({field: text})
    line = await services.payouts.line(payout_id)
    ok: PayoutAct = "rejectok" if action == "reject" else "paidok"
    sure = InlineKeyboardButton(
        text=tr_plain(f"admin-btn-payout-{ok}"), callback_data=_cb(ok, payout_id, page)
    )
    stop = _stop_markup(payout_id, page).inline_keyboard[0]
    await message.answer(
        tr(f"{stem}-confirm", text=text, **_money(line)) + "\n\n" + entry_text(line, services),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[sure], stop]),
    )


async def confirmed(
    query: CallbackQuery, callback_data: PayoutCb, services: Services, state: FSMContext
) -> None:
    """Receives: Confirm under a typed reason (reject) or reference (mark paid)."""
    action = "reject" if callback_data.action == "rejectok" else "paid"
    _st, field, _limit, stem = _ASKS[action]
    data = await state.get_data()
    text = data.get(field)
    if data.get("payout_id") != callback_data.payout_id or not isinstance(text, str):
        await acknowledge(
            query, tr_plain("admin-payout-input-stale", limit=CALLBACK_ANSWER_MAX), show_alert=True
        )
        return
    who = actor(query)
    try:
        if action == "reject":
            p = await services.payouts.reject(callback_data.payout_id, text, actor=who)
        else:
            p = await services.payouts.mark_paid(callback_data.payout_id, text, actor=who)
    except PayoutAlreadyDecided as e:
        await state.clear()
        await _decided_first(query, services, e, callback_data.page)
        return
    await state.clear()
    await acknowledge(query, tr_plain(f"{stem}-done", id=p.id, limit=CALLBACK_ANSWER_MAX))
    await redraw(query, *await _queue(services, callback_data.page))


async def stop(query: CallbackQuery, callback_data: PayoutCb, services: Services, state: FSMContext) -> None:
    """Receives: Stop while the bot waits for a reason or a reference."""
    if await state.get_state() in PayoutInput:
        await state.clear()
    await show(query, *await _queue(services, callback_data.page))


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.MONEY))
    router.callback_query.filter(Has(Power.MONEY))
    router.message.register(payouts_command, Command("payouts"))
    router.callback_query.register(page_button, PayoutCb.filter(F.action == "list"))
    router.callback_query.register(approve, PayoutCb.filter(F.action == "approve"))
    router.callback_query.register(ask, PayoutCb.filter(F.action.in_({"reject", "paid"})))
    router.callback_query.register(confirmed, PayoutCb.filter(F.action.in_({"rejectok", "paidok"})))
    router.callback_query.register(stop, PayoutCb.filter(F.action == "stop"))
    # Commands go where they are meant to, whatever the bot waits for.
    not_a_command = When(~F.text.startswith("/"))
    router.message.register(typed, StateFilter(PayoutInput.reason, PayoutInput.reference), not_a_command)
    return router
