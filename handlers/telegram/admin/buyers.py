"""Buyers in the back office (owners and admins: ``Power.BUYERS``):

    /user TELEGRAM_ID            orders (count, latest), spend per currency, phone set or not, banned or not
    /ban TELEGRAM_ID reason…     a banned buyer is told politely at checkout and cannot buy; their orders
    /unban TELEGRAM_ID reason…   stay theirs to see. The reason is required and audited.

Owners cannot be banned, nor staff (take them off the staff first). The shop keeps no @usernames, so a
buyer is named by their Telegram id."""

from __future__ import annotations

import re

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.errors import UsernameNotKnown
from core.roles import Power
from core.services import Services
from core.services.buyers import BuyerProfile
from core.services.order_desk import OrderList
from handlers.money import format_amount
from handlers.telegram.admin.common import actor, back_to_menu
from handlers.telegram.admin.filters import CHANNEL, Has
from handlers.telegram.admin.order_text import line_label, list_text, when
from handlers.telegram.ui.callbacks import MAX_ID, AdminCb, OrderViewCb
from handlers.telegram.ui.text import show, tr

_TG_ID = r"[1-9][0-9]{0,18}"
_ONE = re.compile(_TG_ID)
_WITH_REASON = re.compile(rf"({_TG_ID})\s+(\S.*)", re.DOTALL)


def _tg_id(text: str) -> str | None:
    if text.startswith("@"):
        raise UsernameNotKnown()
    return text if _ONE.fullmatch(text) and int(text) <= MAX_ID else None


def _profile_text(p: BuyerProfile, services: Services) -> str:
    tz = services.ctx.config.timezone
    u = p.user
    spent = ", ".join(format_amount(v, c) for c, v in p.spent.items()) or "—"
    lines = [
        tr("admin-user-title", who=u.external_id, id=u.id),
        tr("admin-user-since", since=when(u.created_at, tz), language=u.language or "—"),
        tr("admin-user-phone-set" if u.phone else "admin-user-phone-none"),
        tr("admin-user-banned" if u.blocklisted else "admin-user-not-banned"),
        tr("admin-user-orders", count=p.orders, spent=spent),
    ]
    if p.recent:
        lines.append(list_text(OrderList(p.recent, False), tr("admin-user-recent"), tz))
    lines += ["", tr("admin-user-usage")]
    return "\n".join(lines)


def _profile_markup(p: BuyerProfile) -> InlineKeyboardMarkup:
    rows = [
        [InlineKeyboardButton(text=line_label(ln), callback_data=OrderViewCb(ref=ln.order.ref).pack())]
        for ln in p.recent
    ]
    rows.append([back_to_menu()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def buyers_screen(event: Message | CallbackQuery) -> None:
    """Receives: the menu's Buyers button."""
    await show(event, tr("admin-user-usage"), InlineKeyboardMarkup(inline_keyboard=[[back_to_menu()]]))


async def user_command(message: Message, command: CommandObject, services: Services) -> None:
    """Receives: /user TELEGRAM_ID."""
    who = _tg_id((command.args or "").strip())
    if who is None:
        await message.answer(tr("admin-user-usage"))
        return
    profile = await services.buyers.profile(CHANNEL, who)
    await message.answer(_profile_text(profile, services), reply_markup=_profile_markup(profile))


async def _ban(
    message: Message, command: CommandObject, services: Services, admin_ids: list[int], banned: bool
) -> None:
    args = (command.args or "").strip()
    if args.startswith("@"):
        raise UsernameNotKnown()
    m = _WITH_REASON.fullmatch(args)
    who = _tg_id(m.group(1)) if m else None
    if m is None or who is None:
        await message.answer(tr("admin-ban-usage"))
        return
    owners = [str(i) for i in admin_ids]
    desk = services.buyers
    change = desk.ban if banned else desk.unban
    changed = await change(CHANNEL, who, m.group(2), actor=actor(message), owners=owners)
    if banned:
        key = "admin-ban-done" if changed else "admin-ban-already"
    else:
        key = "admin-unban-done" if changed else "admin-unban-already"
    await message.answer(tr(key, who=who))


async def ban(message: Message, command: CommandObject, services: Services, admin_ids: list[int]) -> None:
    """Receives: /ban TELEGRAM_ID reason…"""
    await _ban(message, command, services, admin_ids, True)


async def unban(message: Message, command: CommandObject, services: Services, admin_ids: list[int]) -> None:
    """Receives: /unban TELEGRAM_ID reason…"""
    await _ban(message, command, services, admin_ids, False)


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.BUYERS))
    router.callback_query.filter(Has(Power.BUYERS))
    router.message.register(user_command, Command("user"))
    router.message.register(ban, Command("ban"))
    router.message.register(unban, Command("unban"))
    router.callback_query.register(buyers_screen, AdminCb.filter(F.screen == "buyers"))
    return router
