"""What an admin sees of a broadcast: its audience in words, and its progress message (one message, edited
as it goes: sent / failed / blocked / left, with a Cancel button until it ends)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from core.repositories.broadcasts import Audience
from core.services.broadcasts import Progress
from handlers.telegram.ui.callbacks import BroadcastCb
from handlers.telegram.ui.text import tr, tr_plain


def audience_text(a: Audience) -> str:
    """For an HTML message."""
    if a.kind == "product":
        return tr("admin-broadcast-aud-product", id=a.product_id)
    if a.kind == "active":
        return tr("admin-broadcast-aud-active", days=a.days)
    return tr("admin-broadcast-aud-all")


def progress_view(p: Progress) -> tuple[str, InlineKeyboardMarkup | None]:
    b, d = p.broadcast, p.delivery
    head = tr("admin-broadcast-head", id=b.id, audience=audience_text(b.target))
    if p.finished:
        key = "admin-broadcast-cancelled-final" if b.status == "cancelled" else "admin-broadcast-done"
        body = tr(key, sent=d.sent, failed=d.failed, blocked=d.blocked, cancelled=d.cancelled, total=d.total)
        return f"{head}\n{body}", None
    if b.status == "cancelled":
        body = tr("admin-broadcast-stopping", sent=d.sent, failed=d.failed, blocked=d.blocked, left=p.left)
        return f"{head}\n{body}", None
    body = tr("admin-broadcast-progress", sent=d.sent, failed=d.failed, blocked=d.blocked, left=p.left)
    stop = InlineKeyboardButton(
        text=tr_plain("admin-btn-broadcast-stop"),
        callback_data=BroadcastCb(action="stop", broadcast_id=b.id).pack(),
    )
    return f"{head}\n{body}", InlineKeyboardMarkup(inline_keyboard=[[stop]])
