"""/withdraw: a distributor asks for their available commission to be paid out (``core.services.payouts``).

1. /withdraw (or a Withdraw button elsewhere: ``withdraw_button``) shows the available balance per
   currency with what withdrawing it pays, or why it cannot be withdrawn now (under ``PAYOUT_MINIMUM``,
   Stars that are only spent, a request already waiting), the last requests, and a button per currency
   that can be withdrawn.
2. A currency tapped, the distributor types where to be paid (``Withdrawing.details``; Cancel leaves).
3. The details shown back, Confirm asks for the whole available balance of that currency. The request key
   is made when the currency is picked, so however often Confirm is tapped there is one request.

The details are personal data: shown back to the distributor and to admins with ``Power.MONEY`` only,
never logged."""

from __future__ import annotations

import logging
import secrets

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.errors import PayoutRefused, PayoutTextInvalid
from core.models import Payout, User
from core.services import Services
from core.services.payouts import MAX_DETAILS, Blocked, WithdrawOption, WithdrawOverview, typed_text
from handlers.money import format_amount
from handlers.telegram.chats import private_router
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import WithdrawCb
from handlers.telegram.ui.text import (
    BUTTON_TEXT_MAX,
    CALLBACK_ANSWER_MAX,
    acknowledge,
    refusal,
    show,
    tr,
    tr_plain,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"


class Withdrawing(StatesGroup):
    details = State()  # waiting for where to be paid
    confirm = State()  # the details shown back, waiting for Confirm


def withdraw_button() -> InlineKeyboardButton:
    """The button that opens /withdraw (for other screens, e.g. the invite dashboard)."""
    return InlineKeyboardButton(
        text=tr_plain("withdraw-btn-open"), callback_data=WithdrawCb(action="open").pack()
    )


def _button(text: str, data: WithdrawCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _worth(o: WithdrawOption, payout_currency: str) -> str:
    """The balance, and what it pays when that is another currency (Stars)."""
    have = format_amount(o.available, o.currency)
    if o.currency == payout_currency or o.payout_amount is None:
        return have
    return tr_plain("withdraw-worth", amount=have, payout=format_amount(o.payout_amount, payout_currency))


def _line(o: WithdrawOption, payout_currency: str) -> str:
    worth = _worth(o, payout_currency)
    if o.blocked is Blocked.OPEN and o.open is not None:
        return tr(
            "withdraw-line-open",
            id=o.open.id,
            amount=format_amount(o.open.amount, o.open.currency),
            status=tr_plain(f"payout-status-{o.open.status.value}"),
        )
    if o.blocked is Blocked.NOT_WITHDRAWABLE:
        return tr("withdraw-line-spend-only", available=worth)
    if o.blocked is Blocked.BELOW_MINIMUM:
        return tr("withdraw-line-below", available=worth)
    return tr("withdraw-line-ready", available=worth)


def _recent(p: Payout) -> str:
    return tr(
        "withdraw-recent-line",
        id=p.id,
        amount=format_amount(p.amount, p.currency),
        status=tr_plain(f"payout-status-{p.status.value}"),
    )


def overview_view(o: WithdrawOverview) -> tuple[str, InlineKeyboardMarkup]:
    minimum = format_amount(o.minimum, o.payout_currency)
    if not o.options:
        lines = [tr("withdraw-title", minimum=minimum), tr("withdraw-none")]
    else:
        lines = [tr("withdraw-title", minimum=minimum), *(_line(x, o.payout_currency) for x in o.options)]
    closed = [p for p in o.recent if not p.open]
    if closed:
        lines += ["", tr("withdraw-recent"), *map(_recent, closed)]
    rows = [
        [
            _button(
                tr_plain("withdraw-btn-pick", amount=_worth(x, o.payout_currency), limit=BUTTON_TEXT_MAX),
                WithdrawCb(action="pick", currency=x.currency),
            )
        ]
        for x in o.options
        if x.blocked is None
    ]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def _cancel_row() -> list[InlineKeyboardButton]:
    return [_button(tr_plain("withdraw-btn-cancel"), WithdrawCb(action="stop"))]


async def _leave_flow(state: FSMContext) -> None:
    """Forget a withdrawal in progress (never another conversation: an admin's, say)."""
    if await state.get_state() in Withdrawing:
        await state.clear()


async def withdraw_screen(
    event: Message | CallbackQuery, shop_user: User | None, services: Services, state: FSMContext
) -> None:
    """Receives: /withdraw, and a Withdraw button (``withdraw_button``)."""
    await _leave_flow(state)
    if shop_user is None:  # no row, no balance: the same screen as an empty balance
        overview = WithdrawOverview([], services.ctx.config.payout_minimum, services.ctx.config.currency, [])
    else:
        overview = await services.payouts.overview(shop_user.id)
    await show(event, *overview_view(overview))


async def _not_now(query: CallbackQuery, services: Services, user: User | None, text: str) -> None:
    """The tap no longer fits (the balance changed, a request was made meanwhile): say why, show the
    screen as it is now."""
    await acknowledge(query, text, show_alert=True)
    if user is not None:
        text_now, markup = overview_view(await services.payouts.overview(user.id))
        if query.message is not None:
            await query.message.answer(text_now, reply_markup=markup)


async def pick(
    query: CallbackQuery,
    callback_data: WithdrawCb,
    shop_user: User | None,
    services: Services,
    state: FSMContext,
) -> None:
    """Receives: a currency's Withdraw button: ask where to be paid."""
    cur = callback_data.currency
    overview = await services.payouts.overview(shop_user.id) if shop_user is not None else None
    option = overview.option(cur) if overview is not None else None
    if option is None or option.blocked is not None or overview is None:
        await _not_now(query, services, shop_user, tr_plain("withdraw-not-now", limit=CALLBACK_ANSWER_MAX))
        return
    worth = _worth(option, overview.payout_currency)
    await state.set_state(Withdrawing.details)
    # the request's key: one request however often Confirm is tapped (or replayed)
    await state.set_data({"currency": cur, "worth": worth, "key": f"{CHANNEL}:{secrets.token_hex(12)}"})
    text = tr("withdraw-ask-details", amount=worth, max=MAX_DETAILS)
    await show(query, text, InlineKeyboardMarkup(inline_keyboard=[_cancel_row()]))


async def details_typed(message: Message, state: FSMContext) -> None:
    """Receives: the distributor's next message after picking a currency: where to be paid."""
    cancel = InlineKeyboardMarkup(inline_keyboard=[_cancel_row()])
    try:
        details = typed_text(message.text or "", MAX_DETAILS)
    except PayoutTextInvalid:
        log.info("withdrawal details refused (empty once cleaned, too long, or not text)")
        await message.answer(tr("withdraw-details-invalid", max=MAX_DETAILS), reply_markup=cancel)
        return
    data = await state.get_data()
    cur = data.get("currency")
    if not isinstance(cur, str) or not cur:  # the conversation's data was lost (storage): start again
        await _leave_flow(state)
        await message.answer(tr("withdraw-stale"))
        return
    await state.set_state(Withdrawing.confirm)
    await state.update_data(details=details)
    go = _button(tr_plain("withdraw-btn-go"), WithdrawCb(action="go", currency=cur))
    await message.answer(
        tr("withdraw-confirm", amount=str(data.get("worth", cur)), details=details),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[go], _cancel_row()]),
    )


async def confirm(
    query: CallbackQuery,
    callback_data: WithdrawCb,
    shop_user: User | None,
    services: Services,
    state: FSMContext,
) -> None:
    """Receives: Confirm under the details shown back: ask for the whole available balance."""
    data = await state.get_data()
    details, key = data.get("details"), data.get("key")
    if (
        shop_user is None
        or await state.get_state() != Withdrawing.confirm.state
        or data.get("currency") != callback_data.currency
        or not isinstance(details, str)
        or not isinstance(key, str)
    ):
        await acknowledge(query, tr_plain("withdraw-stale", limit=CALLBACK_ANSWER_MAX), show_alert=True)
        return
    try:
        done = await services.payouts.request(shop_user.id, callback_data.currency, details, key=key)
    except PayoutRefused as e:
        await state.clear()
        await _not_now(query, services, shop_user, refusal(e, plain=True))
        return
    await state.clear()
    p = done.payout
    text = tr(
        "withdraw-requested",
        id=p.id,
        amount=format_amount(p.amount, p.currency),
        payout=format_amount(p.payout_amount, p.payout_currency),
        details=p.details,
    )
    await show(query, text)


async def stop(query: CallbackQuery, state: FSMContext) -> None:
    """Receives: Cancel while choosing, typing or confirming."""
    await _leave_flow(state)
    await show(query, tr("withdraw-cancelled"))


def build() -> Router:
    """A fresh router with this feature's handlers (one per dispatcher); private chats only."""
    router = private_router(__name__)
    router.message.register(withdraw_screen, Command("withdraw"))
    router.callback_query.register(withdraw_screen, WithdrawCb.filter(F.action == "open"))
    router.callback_query.register(pick, WithdrawCb.filter(F.action == "pick"))
    router.callback_query.register(confirm, WithdrawCb.filter(F.action == "go"))
    router.callback_query.register(stop, WithdrawCb.filter(F.action == "stop"))
    # Commands go where they are meant to, whatever step the withdrawal is at.
    typed = When(~F.text.startswith("/"))
    router.message.register(details_typed, StateFilter(Withdrawing.details, Withdrawing.confirm), typed)
    return router
