"""/audit (owners only): the audit trail, newest first, a page at a time with ◀️ ▶️ buttons:

    /audit                       every entry
    /audit order <order ref>     one order's entries
    /audit actor <actor>         one actor's: telegram:<id> (staff), user:<shop user id> (a buyer), cli,
                                 system, outbox, telegram (the channel itself)

Actions are shown in the owner's language (``action_label``; ``keyshop audit --json`` keeps the raw names).
Times are the shop's (``SHOP_TIMEZONE``). Details are shown escaped; key ids are shown as a count (audit
rows never hold a key's value)."""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any, Literal

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.repositories.audit import AuditRecord
from core.roles import Power
from core.services import Services
from handlers.telegram.admin.common import action_label, back_to_menu
from handlers.telegram.admin.filters import Has
from handlers.telegram.ui.callbacks import MAX_PAGE, AdminCb, AuditPageCb
from handlers.telegram.ui.text import clip, show, tr

PAGE_SIZE = 8
_ORDER = re.compile(r"order\s+([A-Za-z0-9_-]{1,32})")
_ACTOR = re.compile(r"actor\s+([a-z_]{1,16}(?::[0-9]{1,19})?)")
_KEYS = {"key", "keys"}  # key ids: shown as how many
Filter = tuple[Literal["all", "order", "actor"], str]


def _detail(detail: dict[str, Any]) -> str:
    parts = []
    for name, value in sorted(detail.items()):
        if name in _KEYS:
            value = len(value) if isinstance(value, list) else 1
        elif isinstance(value, list):
            value = ",".join(map(str, value[:5])) + ("…" if len(value) > 5 else "")
        parts.append(f"{name}={value}")
    return clip(" ".join(parts), 120)


def _entry(e: AuditRecord, tz: tzinfo) -> str:
    lines = [
        tr(
            "admin-audit-line",
            id=e.id,
            at=e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            actor=e.actor,
            action=action_label(e.action),
        )
    ]
    if e.order_ref is not None:
        lines.append(tr("admin-audit-order", ref=e.order_ref))
    if e.product_id is not None:
        lines.append(tr("admin-audit-product", id=e.product_id, name=e.product_name or "?"))
    if e.detail:
        lines.append(tr("admin-audit-detail", detail=_detail(e.detail)))
    return "\n".join(lines)


async def _page(event: Message | CallbackQuery, services: Services, page: int, flt: Filter) -> None:
    by, q = flt
    result = await services.audit.recent(
        order_ref=q if by == "order" else None,
        actor=q.replace(".", ":") if by == "actor" else None,
        offset=page * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    tz = services.ctx.config.timezone
    title = {
        "all": tr("admin-audit-title"),
        "order": tr("admin-audit-title-order", ref=q),
        "actor": tr("admin-audit-title-actor", actor=q.replace(".", ":")),
    }[by]
    lines = [tr("admin-audit-page", title=title, page=page + 1, tz=tz)]
    lines += [_entry(e, tz) for e in result.entries] or [tr("admin-audit-none")]
    if page == 0:
        lines += ["", tr("admin-audit-usage")]
    nav = []
    if page > 0:
        nav.append(
            InlineKeyboardButton(text="◀️", callback_data=AuditPageCb(page=page - 1, by=by, q=q).pack())
        )
    if result.has_more and page < MAX_PAGE:
        nav.append(
            InlineKeyboardButton(text="▶️", callback_data=AuditPageCb(page=page + 1, by=by, q=q).pack())
        )
    rows = [nav] if nav else []
    rows.append([back_to_menu()])
    await show(event, "\n\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows))


async def audit_command(message: Message, command: CommandObject, services: Services) -> None:
    """Receives: /audit, /audit order <ref>, /audit actor <actor>."""
    args = " ".join((command.args or "").split())
    flt: Filter
    if not args:
        flt = ("all", "")
    elif m := _ORDER.fullmatch(args):
        flt = ("order", m.group(1))
    elif m := _ACTOR.fullmatch(args):
        flt = ("actor", m.group(1).replace(":", "."))
    else:
        await message.answer(tr("admin-audit-usage"))
        return
    await _page(message, services, 0, flt)


async def audit_menu(query: CallbackQuery, services: Services) -> None:
    """Receives: the menu's Audit button."""
    await _page(query, services, 0, ("all", ""))


async def audit_page(query: CallbackQuery, callback_data: AuditPageCb, services: Services) -> None:
    """Receives: ◀️ / ▶️ of an audit page."""
    await _page(query, services, callback_data.page, (callback_data.by, callback_data.q))


def build() -> Router:
    router = Router(name=__name__)
    router.message.filter(Has(Power.AUDIT))
    router.callback_query.filter(Has(Power.AUDIT))
    router.message.register(audit_command, Command("audit"))
    router.callback_query.register(audit_menu, AdminCb.filter(F.screen == "audit"))
    router.callback_query.register(audit_page, AuditPageCb.filter())
    return router
