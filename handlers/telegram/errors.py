"""One error handler: shop refusals become translated replies; anything else is logged, reported to the
admins (without secrets) and answered with a generic apology. Never a traceback to a user."""

from __future__ import annotations

import html
import logging

from aiogram.types import ErrorEvent

from core.errors import ShopError
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.text import tr

log = logging.getLogger(__name__)


async def _reply(event: ErrorEvent, text: str, *, alert: bool) -> None:
    update = event.update
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text[:200], show_alert=alert)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception:  # the user may have blocked the bot meanwhile; nothing more to tell them
        log.info("could not tell the user about an error", exc_info=True)


async def shop_error(event: ErrorEvent) -> None:
    """Receives: errors of type ShopError raised by any handler."""
    exc = event.exception
    assert isinstance(exc, ShopError)
    log.info("refused update %s: %s", event.update.update_id, exc.key)
    await _reply(event, tr(exc.key, **exc.params) if exc.params else tr(exc.key), alert=True)


async def unexpected_error(event: ErrorEvent, alerts: AdminAlerts) -> None:
    """Receives: every other exception raised by a handler."""
    log.error("update %s failed", event.update.update_id, exc_info=event.exception)
    await _reply(event, tr("error-unexpected"), alert=True)
    name = type(event.exception).__name__
    await alerts.notify(f"⚠️ update {event.update.update_id}: {html.escape(name)}", kind=f"error:{name}")
