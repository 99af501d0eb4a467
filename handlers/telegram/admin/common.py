"""What the admin screens share: the actor name they audit under, an audit action's label, the grant check
for one product, and the answer to a staff member whose role does not reach what they asked."""

from __future__ import annotations

import logging
import re

from aiogram.types import CallbackQuery, InlineKeyboardButton, Message

from core.models import Product
from core.roles import Grant
from core.services import Services
from core.vault import mask
from handlers.telegram.admin.filters import CHANNEL
from handlers.telegram.ui.callbacks import AdminCb
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, acknowledge, tr, tr_plain

log = logging.getLogger(__name__)

# "/void ID KEY": the one admin command whose text carries a key's value (audit rows never hold one)
_VOID_KEY = re.compile(r"(/void(?:@\w+)?\s+\S+\s+)(?!batch\s+\S+\s*$)(\S.*)", re.IGNORECASE | re.DOTALL)


def redacted(what: str) -> str:
    """A refused command as the log and the audit trail keep it: a key typed into ``/void`` masked."""
    m = _VOID_KEY.match(what)
    return m.group(1) + mask(m.group(2).strip()) if m else what


def action_label(action: str) -> str:
    """An audit action in the reader's language (locale key ``audit-action-<action>``); an action with no
    label (written by a newer version, say) shows as it is stored. Plain text: escape it for HTML."""
    key = f"audit-action-{action}"
    label = tr_plain(key)
    return action if label == key else label


def actor(event: Message | CallbackQuery) -> str:
    """Who the audit trail names for an admin's action."""
    assert event.from_user is not None  # StaffOnly let only a person through
    return f"{CHANNEL}:{event.from_user.id}"


def back_to_menu() -> InlineKeyboardButton:
    """The Back button of every admin screen: to the /admin menu."""
    return InlineKeyboardButton(text=tr_plain("button-back"), callback_data=AdminCb(screen="menu").pack())


def reaches(grant: Grant, product: Product) -> bool:
    return grant.covers(product.id, product.category_id)


async def not_permitted(event: Message | CallbackQuery, services: Services, what: str) -> None:
    """A staff member asked for something beyond their role or scope: told so, logged and audited."""
    assert event.from_user is not None
    what = redacted(what)
    log.info("admin action refused to %s: %s", event.from_user.id, what[:64])
    await services.staff.record_refusal(CHANNEL, str(event.from_user.id), what)
    if isinstance(event, CallbackQuery):
        await acknowledge(event, tr_plain("admin-not-permitted", limit=CALLBACK_ANSWER_MAX), show_alert=True)
    else:
        await event.answer(tr("admin-not-permitted"))
