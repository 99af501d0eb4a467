"""Buyers in the back office (owners and admins: ``Power.BUYERS``):

    /user ID|@name               orders (count, latest), spend per currency, phone set or not, banned or not
    /ban ID|@name reason…        a banned buyer is told politely at checkout and cannot buy; their orders
    /unban ID|@name reason…      stay theirs to see. The reason is required and audited.

Owners cannot be banned, nor staff (take them off the staff first). A buyer is named by their Telegram id
or by the @username the shop last saw them use (a bot cannot ask Telegram who holds a username)."""

from __future__ import annotations

import html
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
_USERNAME = re.compile(r"@[A-Za-z0-9_]{1,32}")
_WITH_REASON = re.compile(r"(\S+)\s+(\S.*)", re.DOTALL)


async def _who(text: str, services: Services) -> str | None:
    """The Telegram id named by ``text``: the id itself, or an @username the shop has seen (else
    ``UsernameNotKnown``); None when it is neither."""
    if _USERNAME.fullmatch(text):
        user = await services.users.find_by_username(CHANNEL, text[1:])
        if user is None:
            raise UsernameNotKnown(who=text)
        return user.external_id
    return text if _ONE.fullmatch(text) and int(text) <= MAX_ID else None


def _profile_text(p: BuyerProfile, services: Services) -> str:
    tz = services.ctx.config.timezone
    u = p.user
    spent = ", ".join(format_amount(v, c) for c, v in p.spent.items()) or "—"
    lines = [
        tr("admin-user-title", who=u.external_id, id=u.id)
        + (f" @{html.escape(u.username)}" if u.username else ""),
        tr("admin-user-since", since=when(u.created_at, tz), language=u.language or "—"),
        tr("admin-user-phone-set" if u.phone else "admin-user-phone-none"),
        tr("admin-user-banned" if u.blocklisted else "admin-user-not-banned"),
        tr("admin-user-orders", count=p.orders, spent=spent),
    ]
    if p.recent:
        lines.append(list_text(OrderList(p.recent), tr("admin-user-recent"), tz))
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
    who = await _who((command.args or "").strip(), services)
    if who is None:
        await message.answer(tr("admin-user-usage"))
        return
    profile = await services.buyers.profile(CHANNEL, who)
    await message.answer(_profile_text(profile, services), reply_markup=_profile_markup(profile))


async def _ban(
    message: Message, command: CommandObject, services: Services, admin_ids: list[int], banned: bool
) -> None:
    m = _WITH_REASON.fullmatch((command.args or "").strip())
    who = await _who(m.group(1), services) if m else None
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
