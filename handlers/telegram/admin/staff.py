"""/staff (owners only): the staff list with a Remove button per member, and the commands that change it:

    /staff admin <telegram id>
    /staff operator <telegram id> [p:<product id>,...] [c:<category id>,...]
    /staff remove <telegram id>

A Telegram id is what the person sees as their id (for example in @userinfobot); they get the menu the
role allows the next time they send /admin, and their "/" command menu is changed at once (reset to the
buyers' when they are removed)."""

from __future__ import annotations

import re

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n

from core.repositories.staff import StaffMember
from core.roles import Power, Role
from core.services import Services
from handlers.telegram.admin.common import actor, back_to_menu
from handlers.telegram.admin.filters import CHANNEL, Has
from handlers.telegram.commands import reset_staff_menu, set_staff_menu
from handlers.telegram.ui.callbacks import MAX_ID, AdminCb, StaffRemoveCb
from handlers.telegram.ui.text import acknowledge, redraw, show, tr, tr_plain

_TG_ID = r"[1-9][0-9]{0,18}"
_IDS = rf"{_TG_ID}(?:,{_TG_ID}){{0,49}}"
_PUT = re.compile(rf"(admin|operator)\s+({_TG_ID})((?:\s+[pc]:{_IDS})*)")
_REMOVE = re.compile(rf"remove\s+({_TG_ID})")
_SCOPE = re.compile(rf"([pc]):({_IDS})")


def _member_line(m: StaffMember) -> str:
    scope = ""
    if m.grant.scoped:
        parts = [f"p:{p}" for p in sorted(m.grant.products)] + [f"c:{c}" for c in sorted(m.grant.categories)]
        scope = " " + tr("admin-staff-scope", scope=" ".join(parts))
    return tr("admin-staff-line", id=m.external_id, role=tr(f"admin-role-{m.grant.role.value}")) + scope


def _screen(members: list[StaffMember]) -> tuple[str, InlineKeyboardMarkup]:
    ours = [m for m in members if m.channel == CHANNEL]
    lines = [tr("admin-staff-title")]
    lines += [_member_line(m) for m in ours] or [tr("admin-staff-none")]
    lines.append("")
    lines.append(tr("admin-staff-usage"))
    rows = [
        [
            InlineKeyboardButton(
                text=tr_plain("admin-btn-staff-remove", id=m.external_id),
                callback_data=StaffRemoveCb(tg_id=int(m.external_id)).pack(),
            )
        ]
        for m in ours[:50]
    ]
    rows.append([back_to_menu()])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def staff_screen(event: Message | CallbackQuery, services: Services) -> None:
    """Receives: /staff with no arguments, and the menu's Staff button."""
    await show(event, *_screen(await services.staff.members()))


async def staff_command(
    message: Message, command: CommandObject, services: Services, admin_ids: list[int], i18n: I18n
) -> None:
    """Receives: /staff (the list), /staff admin|operator|remove <telegram id> [scope]."""
    args = " ".join((command.args or "").split())
    if not args:
        await staff_screen(message, services)
        return
    owners = [str(i) for i in admin_ids]
    if m := _REMOVE.fullmatch(args):
        tg_id = m.group(1)
        removed = await services.staff.remove(CHANNEL, tg_id, actor=actor(message))
        if removed and message.bot is not None:
            await reset_staff_menu(message.bot, i18n, int(tg_id))
        await message.answer(tr("admin-staff-removed" if removed else "admin-staff-not-found", id=tg_id))
        return
    m = _PUT.fullmatch(args)
    if m is None or int(m.group(2)) > MAX_ID:
        await message.answer(tr("admin-staff-usage"))
        return
    role, tg_id = Role(m.group(1)), m.group(2)
    products: set[int] = set()
    categories: set[int] = set()
    for kind, ids in _SCOPE.findall(m.group(3)):
        (products if kind == "p" else categories).update(int(i) for i in ids.split(","))
    member = await services.staff.put(
        CHANNEL,
        tg_id,
        role,
        actor=actor(message),
        owners=owners,
        products=products,
        categories=categories,
    )
    if message.bot is not None:
        await set_staff_menu(message.bot, i18n, int(tg_id), member.grant)
    await message.answer(tr("admin-staff-saved") + "\n" + _member_line(member))


async def remove_button(
    query: CallbackQuery, callback_data: StaffRemoveCb, services: Services, i18n: I18n
) -> None:
    """Receives: a Remove button of the staff list."""
    tg_id = str(callback_data.tg_id)
    removed = await services.staff.remove(CHANNEL, tg_id, actor=actor(query))
    if removed and query.bot is not None:
        await reset_staff_menu(query.bot, i18n, callback_data.tg_id)
    await acknowledge(
        query, tr_plain("admin-staff-removed" if removed else "admin-staff-not-found", id=tg_id)
    )
    await redraw(query, *_screen(await services.staff.members()))


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.STAFF))
    router.callback_query.filter(Has(Power.STAFF))
    router.message.register(staff_command, Command("staff"))
    router.callback_query.register(staff_screen, AdminCb.filter(F.screen == "staff"))
    router.callback_query.register(remove_button, StaffRemoveCb.filter())
    return router
