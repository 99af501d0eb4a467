"""/distributors (owners and admins: ``Power.DISTRIBUTORS``): the shop's distributors.

- The overview: totals (how many distributors, the buyers they brought; per currency what was earned and
  what is pending, available and paid out) and the top distributors by what they earned in one currency, a
  page at a time, with a button per other currency to rank by it.
- A distributor's card (tap one): who, their funnel, their money per currency, their commission rates (the
  shop's or an override) and whether they are blocked; Set rates (typed next: ``12,6``, or ``default`` for
  the shop's), Block / Unblock (asked first), Back. Every change is audited and the card redrawn at once.
  Nobody changes their own rates or block, and only an owner an owner's (refused at the first tap).

A blocked distributor earns no commission from then on; it takes back nothing, and it is no ban (/ban)."""

from __future__ import annotations

import logging
import re

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.errors import InvalidRates
from core.rates import format_rates
from core.repositories.distributors import DistributorSummary
from core.roles import Power
from core.services import Services
from core.services.distributors import TOP_PAGE, Overview, check_may_set_terms
from handlers.money import format_amount
from handlers.telegram.admin.common import actor, back_to_menu
from handlers.telegram.admin.filters import CHANNEL, Has
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import MAX_PAGE, AdminCb, DistributorCb, DistributorsCb, PayoutCb
from handlers.telegram.ui.earnings import funnel_line, money_line
from handlers.telegram.ui.text import BUTTON_TEXT_MAX, acknowledge, redraw, refusal, show, tr, tr_plain

log = logging.getLogger(__name__)

# What an admin types to go back to the shop's rates, in any of the shop's languages.
_DEFAULT = re.compile(r"default|默认|默认值", re.IGNORECASE)


class SettingRates(StatesGroup):
    rates = State()  # the rates for the distributor in ``user_id`` are typed next


def _button(text: str, data: DistributorCb | DistributorsCb | PayoutCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def who(s: DistributorSummary) -> str:
    """A distributor as the back office names them (plain text): shop id, channel id, @username."""
    u = s.user
    name = f" @{u.username}" if u.username else ""
    return f"#{u.id} · {u.channel}:{u.external_id}{name}"


def _rates(s: DistributorSummary, services: Services) -> str:
    shop = format_rates(services.ctx.config.commission_rates)
    if s.rates is None:
        return tr("admin-distributor-rates-shop", rates=shop)
    return tr("admin-distributor-rates-own", rates=format_rates(s.rates), shop=shop)


# ---------------------------------------------------------------------------------------------- overview


def overview_text(o: Overview) -> str:
    t = o.totals
    lines = [
        tr("admin-distributors-title"),
        tr("admin-distributors-totals", count=t.distributors, buyers=t.referred_buyers),
    ]
    lines += [money_line(e) for e in t.earnings]
    lines.append("")
    lines.append(tr("admin-distributors-top", currency=o.currency, page=o.page + 1))
    if not o.top:
        lines.append(tr("admin-distributors-none"))
    for rank, s in enumerate(o.top, start=o.page * TOP_PAGE + 1):
        earned = next((e.earned for e in s.earnings if e.currency == o.currency), 0)
        flags = (" " + tr("admin-distributor-flag-blocked")) if s.blocked else ""
        flags += (" " + tr("admin-distributor-flag-rates", rates=format_rates(s.rates))) if s.rates else ""
        lines.append(
            tr(
                "admin-distributors-line",
                rank=rank,
                who=who(s),
                earned=format_amount(earned, o.currency),
                buyers=s.funnel.buyers,
            )
            + flags
        )
    return "\n".join(lines)


def overview_rows(o: Overview) -> list[list[InlineKeyboardButton]]:
    """The overview's buttons, one list of rows (a screen reached from here adds its row)."""
    rows = [
        [
            _button(
                tr_plain("admin-btn-distributor", rank=rank, who=who(s), limit=BUTTON_TEXT_MAX),
                DistributorCb(user_id=s.user.id),
            )
        ]
        for rank, s in enumerate(o.top, start=o.page * TOP_PAGE + 1)
    ]
    nav = []
    if o.page > 0:
        nav.append(_button("◀️", DistributorsCb(currency=o.currency, page=o.page - 1)))
    if o.has_more and o.page < MAX_PAGE:
        nav.append(_button("▶️", DistributorsCb(currency=o.currency, page=o.page + 1)))
    if nav:
        rows.append(nav)
    others = [c for c in o.currencies if c != o.currency]
    if others:
        rows.append(
            [
                _button(tr_plain("admin-btn-distributors-rank", currency=c), DistributorsCb(currency=c))
                for c in others
            ]
        )
    rows.append([_button(tr_plain("admin-btn-payout-queue"), PayoutCb(action="list"))])
    rows.append([back_to_menu()])
    return rows


async def _overview(
    event: Message | CallbackQuery, services: Services, currency: str | None, page: int
) -> None:
    o = await services.distributors.overview(currency, page)
    await show(event, overview_text(o), InlineKeyboardMarkup(inline_keyboard=overview_rows(o)))


async def distributors_screen(event: Message | CallbackQuery, state: FSMContext, services: Services) -> None:
    """Receives: /distributors, and the menu's Distributors button."""
    await state.clear()
    await _overview(event, services, None, 0)


async def page_button(
    query: CallbackQuery, callback_data: DistributorsCb, state: FSMContext, services: Services
) -> None:
    """Receives: ◀️ ▶️ and "rank by <currency>" under the overview."""
    await state.clear()
    await _overview(query, services, callback_data.currency, callback_data.page)


# ---------------------------------------------------------------------------------------------- the card


def card_text(s: DistributorSummary, services: Services) -> str:
    lines = [tr("admin-distributor-title", who=who(s)), funnel_line(s.funnel)]
    lines += [money_line(e) for e in s.earnings] or [tr("admin-distributor-no-money")]
    lines.append(_rates(s, services))
    lines.append(tr("admin-distributor-blocked" if s.blocked else "admin-distributor-earning"))
    return "\n".join(lines)


def card_rows(s: DistributorSummary, services: Services) -> list[list[InlineKeyboardButton]]:
    """The card's buttons, one list of rows."""
    uid = s.user.id
    block = (
        _button(tr_plain("admin-btn-distributor-unblock"), DistributorCb(user_id=uid, act="unblock"))
        if s.blocked
        else _button(tr_plain("admin-btn-distributor-block"), DistributorCb(user_id=uid, act="block"))
    )
    back = DistributorsCb(currency=services.ctx.config.currency)
    return [
        [_button(tr_plain("admin-btn-distributor-rates"), DistributorCb(user_id=uid, act="rates")), block],
        [_button(tr_plain("button-back"), back)],
    ]


def _owners(admin_ids: list[int]) -> list[str]:
    """The shop's owners as the audit trail names people (``core.services.distributors``)."""
    return [f"{CHANNEL}:{i}" for i in admin_ids]


async def _card(event: Message | CallbackQuery, services: Services, user_id: int, note: str = "") -> None:
    s = await services.distributors.card(user_id)
    text = (note + "\n\n" if note else "") + card_text(s, services)
    await show(event, text, InlineKeyboardMarkup(inline_keyboard=card_rows(s, services)))


async def card_button(
    query: CallbackQuery,
    callback_data: DistributorCb,
    state: FSMContext,
    services: Services,
    admin_ids: list[int],
) -> None:
    """Receives: a distributor's button (their card), and every button on the card: Set rates, Block /
    Unblock and their confirmations, Cancel."""
    cb, uid = callback_data, callback_data.user_id
    await state.clear()
    if cb.act == "show":
        await _card(query, services, uid)
        return
    s = await services.distributors.card(uid)
    check_may_set_terms(s.user, actor(query), _owners(admin_ids))  # refused: the error handler says why
    if cb.act == "rates":
        await state.set_state(SettingRates.rates)
        await state.update_data(user_id=uid)
        shop = format_rates(services.ctx.config.commission_rates)
        now = format_rates(s.rates) if s.rates else shop
        cancel = _button(tr_plain("admin-btn-distributor-cancel"), DistributorCb(user_id=uid))
        await show(
            query,
            tr("admin-distributor-ask-rates", who=who(s), now=now, shop=shop),
            InlineKeyboardMarkup(inline_keyboard=[[cancel]]),
        )
    elif not cb.sure:
        blocking = cb.act == "block"
        yes = _button(
            tr_plain("admin-btn-distributor-yes-block" if blocking else "admin-btn-distributor-yes-unblock"),
            DistributorCb(user_id=uid, act=cb.act, sure=True),
        )
        cancel = _button(tr_plain("admin-btn-distributor-cancel"), DistributorCb(user_id=uid))
        key = "admin-distributor-ask-block" if blocking else "admin-distributor-ask-unblock"
        await show(query, tr(key, who=who(s)), InlineKeyboardMarkup(inline_keyboard=[[yes, cancel]]))
    else:
        blocking = cb.act == "block"
        changed = await services.distributors.set_blocked(
            uid, blocking, actor=actor(query), owners=_owners(admin_ids)
        )
        if blocking:
            note = "admin-distributor-now-blocked" if changed else "admin-distributor-was-blocked"
        else:
            note = "admin-distributor-now-unblocked" if changed else "admin-distributor-was-unblocked"
        await acknowledge(query, tr_plain(note))
        s = await services.distributors.card(uid)
        text = tr(note) + "\n\n" + card_text(s, services)
        await redraw(query, text, InlineKeyboardMarkup(inline_keyboard=card_rows(s, services)))


async def rates_typed(message: Message, state: FSMContext, services: Services, admin_ids: list[int]) -> None:
    """Receives: the rates typed after Set rates (``12,6`` or ``default``); asked again while refused."""
    uid = int((await state.get_data()).get("user_id", 0))
    text = (message.text or "").strip()
    rates = None if _DEFAULT.fullmatch(text) else text
    try:
        await services.distributors.set_rates(uid, rates, actor=actor(message), owners=_owners(admin_ids))
    except InvalidRates as e:
        log.info("rates for distributor %s refused: %s", uid, e.key)
        shop = format_rates(services.ctx.config.commission_rates)
        await message.answer(refusal(e, plain=False) + "\n" + tr("admin-distributor-rates-usage", shop=shop))
        return
    await state.clear()
    await _card(message, services, uid, tr("admin-distributor-rates-saved"))


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.DISTRIBUTORS))
    router.callback_query.filter(Has(Power.DISTRIBUTORS))
    router.message.register(distributors_screen, Command("distributors"))
    router.callback_query.register(distributors_screen, AdminCb.filter(F.screen == "distributors"))
    router.callback_query.register(page_button, DistributorsCb.filter())
    router.callback_query.register(card_button, DistributorCb.filter())
    # Commands go where they are meant to, whatever is being typed.
    router.message.register(rates_typed, StateFilter(SettingRates.rates), When(~F.text.startswith("/")))
    return router
