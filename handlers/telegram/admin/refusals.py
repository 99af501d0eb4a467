"""Admin commands and buttons that reach no admin screen.

- ``beyond_role()``, last inside the staff's router: a staff member asking for something their role does
  not include is told so (logged and audited). An owner's role includes everything: an admin button that
  reached no screen of theirs is one no screen reads (an old version's, or forged), out of date.
- ``refusals()``, after the staff's router, for everyone else in a private chat: a buyer who types an admin
  command gets exactly what any unknown command gets, and a forged admin button what any unparseable
  button gets, so nothing tells them the command exists; the attempt is logged and audited (no alert: a
  buyer must never be able to page the owner)."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from core.roles import Grant, Power, Role
from core.services import Services
from handlers.telegram.admin.common import not_permitted, redacted
from handlers.telegram.admin.filters import CHANNEL, sender_in_private
from handlers.telegram.filters import When
from handlers.telegram.ui.callbacks import ADMIN_PREFIX
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, tr, tr_plain

log = logging.getLogger(__name__)

# Every admin command and the power it needs (None: any staff member). The refusals below, the /admin
# menu's commands and each staff member's command menu (``menus``) all come from this one table: a new
# command is one line here (and its ``cmd-<command>`` description in both catalogs). A test checks that
# each command a screen registers is here.
ADMIN_COMMAND_POWERS: dict[str, Power | None] = {
    "admin": None,
    "staff": Power.STAFF,
    "stock": Power.STOCK,
    "products": Power.PRODUCTS,
    "price": Power.PRODUCTS,
    "hide": Power.PRODUCTS,
    "show": Power.PRODUCTS,
    "newproduct": Power.PRODUCTS,
    "edit": Power.PRODUCTS,
    "categories": Power.PRODUCTS,
    "newcategory": Power.PRODUCTS,
    "order": Power.ORDERS,
    "orders_pending": Power.ORDERS,
    "user": Power.BUYERS,
    "ban": Power.BUYERS,
    "unban": Power.BUYERS,
    "import": Power.STOCK,
    "export": Power.EXPORT,
    "void": Power.STOCK,
    "broadcast": Power.BROADCAST,
    "stats": Power.REPORTS,
    "audit": Power.AUDIT,
    "payouts": Power.MONEY,
    "distributors": Power.DISTRIBUTORS,
}
ADMIN_COMMANDS = tuple(ADMIN_COMMAND_POWERS)
ADMIN_BUTTON = When(F.data.regexp(rf"^{ADMIN_PREFIX}[a-z]*:"))


async def beyond_role(event: Message | CallbackQuery, services: Services, grant: Grant) -> None:
    """Receives: an admin command or button of a staff member whose role does not include it; an owner's
    button that no screen reads."""
    what = event.text if isinstance(event, Message) else event.data
    if isinstance(event, CallbackQuery) and grant.role is Role.OWNER:
        log.info("unreadable admin button from owner %s: %r", event.from_user.id, (what or "")[:64])
        await acknowledge(event, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)
        return
    await not_permitted(event, services, what or "")


async def refused_command(message: Message, services: Services) -> None:
    """Receives: an admin command from someone who is not staff; also as the caption of a document
    (``/import ID``), which gets what any document from a buyer gets: no answer."""
    await _record(message, services, message.text or message.caption or "")
    if message.text is not None:
        await message.answer(tr("unknown-command"))


async def refused_button(query: CallbackQuery, services: Services) -> None:
    """Receives: an admin button's data from someone who is not staff (forged, or staff no longer)."""
    await acknowledge(query, tr_plain("error-stale-button", limit=CALLBACK_ANSWER_MAX), show_alert=True)
    await _record(query, services, query.data or "")


async def _record(event: Message | CallbackQuery, services: Services, what: str) -> None:
    tg_id = sender_in_private(event)
    what = redacted(what)
    log.info("admin command or button refused to %s: %r", tg_id, what[:64])
    if tg_id is not None:
        await services.staff.record_refusal(CHANNEL, str(tg_id), what)


def beyond_role_router() -> Router:
    router = Router(name=f"{__name__}.beyond_role")
    router.message.register(beyond_role, Command(*ADMIN_COMMANDS))
    router.callback_query.register(beyond_role, ADMIN_BUTTON)
    return router


def refusals() -> Router:
    """For everyone who is not staff, in private chats (the group router answers commands in groups)."""
    from handlers.telegram.chats import private_router

    router = private_router(f"{__name__}.refusals")
    router.message.register(refused_command, Command(*ADMIN_COMMANDS))
    router.callback_query.register(refused_button, ADMIN_BUTTON)
    return router
