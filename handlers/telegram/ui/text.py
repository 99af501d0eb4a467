"""Rendering through locale keys only: every user-facing string comes from the gettext catalogs.

Two paths, because Telegram has two kinds of text fields:
- ``tr`` renders for HTML messages (``sendMessage``, ``editMessageText``, captions): every parameter is
  HTML-escaped, so a product called ``Tom & Jerry <3`` cannot break the message.
- ``tr_plain`` renders for plain-text fields Telegram never parses (button texts, invoice title,
  description and price label, callback-query answers and alerts): nothing is escaped, or ``&amp;``
  would show literally. ``clip`` cuts such a text to a field's limit, in characters, after rendering.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext

from core.errors import ShopError
from core.models import Order, Product
from handlers.money import format_amount

log = logging.getLogger(__name__)

# Telegram's limits for plain-text fields, in characters (see TELEGRAM_LIMITS.md)
CALLBACK_ANSWER_MAX = 200
INVOICE_TITLE_MAX = 32
INVOICE_DESCRIPTION_MAX = 255
BUTTON_TEXT_MAX = 64  # undocumented; long labels are cut by clients anyway


def tr(key: str, /, **params: Any) -> str:
    """The current user's translation of ``key`` for an HTML message (``params`` are HTML-escaped)."""
    return _render(key, {k: html.escape(str(v), quote=False) for k, v in params.items()})


def tr_plain(key: str, /, *, limit: int | None = None, **params: Any) -> str:
    """The current user's translation of ``key`` for a plain-text field (``params`` as they are), cut to
    ``limit`` characters when given."""
    text = _render(key, {k: str(v) for k, v in params.items()})
    return clip(text, limit) if limit else text


def _render(key: str, params: dict[str, str]) -> str:
    text = gettext(key)
    if "{" not in text:
        return text
    return text.format_map(_Params(params))


class _Params(dict[str, str]):
    def __missing__(self, name: str) -> str:  # a placeholder the caller did not fill: show it, never crash
        return "…"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def refusal(exc: ShopError, *, plain: bool) -> str:
    """A shop refusal in the user's language. An order's status is shown translated (``status-*``)."""
    params = dict(exc.params)
    status = params.get("status") or params.get("old")
    if status:
        params["status"] = tr_plain(f"status-{status}")
    return tr_plain(exc.key, **params) if plain else tr(exc.key, **params)


def visible(html_text: str) -> str:
    """What a user sees of an HTML text we rendered (our own tags removed, entities decoded): to compare
    with a message's ``text`` before editing it. Only for texts built by ``tr``, where every ``<`` that
    is not our markup is escaped."""
    return html.unescape(re.sub(r"<[^>]*>", "", html_text)).strip()


def price(
    product: Product, *, fiat: bool = False, currency: str = "XTR", qty: int = 1, locale: str = "en"
) -> str:
    return (
        format_amount(product.price * qty, currency, locale)
        if fiat
        else format_amount(product.price_stars * qty, "XTR")
    )


def shop_time(at: datetime, timezone: ZoneInfo) -> str:
    """A moment as buyers read it: in the shop's time zone (SHOP_TIMEZONE), which is named, since a buyer
    may live in another (``2026-11-25 14:00 (Asia/Shanghai)``)."""
    return f"{at.astimezone(timezone):%Y-%m-%d %H:%M} ({timezone.key})"


def order_status(order: Order) -> str:
    return tr_plain(f"status-{order.status.value}")


# Telegram refusing to answer a callback query it no longer takes: the buyer tapped ~15 s before we got to
# it (a backlog after a restart, a slow database). The tap itself is still to be served.
_QUERY_GONE = ("query is too old", "query id is invalid")
# Telegram refusing to edit a message that is gone (the buyer deleted it) or can no longer be edited.
_MESSAGE_GONE = ("message to edit not found", "message can't be edited")


async def acknowledge(query: CallbackQuery, text: str | None = None, *, show_alert: bool = False) -> None:
    """Answer a callback query (``text``: a plain-text notice or alert). A query too old to be answered is
    no reason to stop serving the tap: a notice is then sent as a message instead, anything else is left
    to the caller (showing the card, sending the invoice...)."""
    try:
        await query.answer(text, show_alert=show_alert)
    except TelegramBadRequest as e:
        if not any(g in e.message.lower() for g in _QUERY_GONE):
            raise
        log.info("callback query %s expired before it was answered", query.id)
        if text and query.bot is not None:
            await query.bot.send_message(query.from_user.id, html.escape(text, quote=False))


async def reply(
    event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Answer a command, or acknowledge a menu button and post the answer as a new message."""
    if isinstance(event, CallbackQuery):
        await acknowledge(event)
        if event.message is not None:
            await event.message.answer(text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)


async def show(event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the message the button belongs to (no chat clutter), or answer a command.

    Telegram refuses an edit that changes nothing ("message is not modified"), which a second tap on the
    same button would ask for: the edit is made only when the text or the keyboard differs, and a refusal
    that still slips through (two taps racing) is no error. A message that is gone (deleted by the buyer
    while the tap was on its way) or can no longer be edited is replaced by a new one."""
    if not isinstance(event, CallbackQuery):
        await event.answer(text, reply_markup=markup)
        return
    await acknowledge(event)
    await redraw(event, text, markup)


async def redraw(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """``show`` for a tap already answered: the message its button belongs to is edited, or replaced by a
    new one where it cannot be (see ``show``)."""
    msg = query.message
    if not isinstance(msg, Message):  # too old to be edited (InaccessibleMessage): send a new one
        if query.bot is not None:
            await query.bot.send_message(query.from_user.id, text, reply_markup=markup)
        return
    if _unchanged(msg, text, markup):
        return
    try:
        await msg.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as e:
        reason = e.message.lower()
        if "message is not modified" in reason:
            log.info("edit of message %s changed nothing", msg.message_id)
        elif any(g in reason for g in _MESSAGE_GONE):
            log.info("message %s cannot be edited (%s): sending a new one", msg.message_id, e.message)
            await msg.answer(text, reply_markup=markup)
        else:
            raise


def _unchanged(msg: Message, text: str, markup: InlineKeyboardMarkup | None) -> bool:
    def dump(m: InlineKeyboardMarkup | None) -> object:
        return m.model_dump(exclude_none=True) if m is not None else None

    old_markup = msg.reply_markup if isinstance(msg.reply_markup, InlineKeyboardMarkup) else None
    return visible(text) == (msg.text or "").strip() and dump(markup) == dump(old_markup)


def pick_locale(language_code: str | None, available: tuple[str, ...] = ("en", "zh_CN")) -> str:
    """Telegram's language_code (an IETF tag such as ``zh-hans`` or ``en-US``) to one of our locales."""
    code = (language_code or "").lower().replace("_", "-")
    if code.startswith("zh") and "zh_CN" in available:
        return "zh_CN"
    return "en"
