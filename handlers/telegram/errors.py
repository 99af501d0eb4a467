"""One error handler: shop refusals become translated replies; anything else is logged, reported to the
admins (rate-limited, without secrets) and answered with a generic apology. Never a traceback to a user.

A callback query is answered exactly once: when the handler already answered it (then failed), the
user gets a message in the private chat instead of a second answer, which Telegram would refuse."""

from __future__ import annotations

import html
import logging

from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import ErrorEvent

from core.errors import ShopError
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.session import AnsweredQueries, replying
from handlers.telegram.text import CALLBACK_ANSWER_MAX, clip, refusal, tr, tr_plain

log = logging.getLogger(__name__)

# Telegram refusing something a user caused (a double tap, a query that expired while they waited):
# nothing is broken, so nobody is alerted.
_HARMLESS = ("message is not modified", "query is too old", "query id is invalid")


async def _reply(event: ErrorEvent, answered: AnsweredQueries, html_text: str, plain: str) -> None:
    update = event.update
    try:
        with replying():
            query = update.callback_query
            if query is not None:
                if query.id not in answered:
                    await query.answer(clip(plain, CALLBACK_ANSWER_MAX), show_alert=True)
                elif query.bot is not None:  # buyer flows run in private chats: the user's chat id
                    await query.bot.send_message(query.from_user.id, html_text)
            elif update.message is not None:
                await update.message.answer(html_text)
    except Exception:  # the user may have blocked the bot meanwhile; nothing more to tell them
        log.info("could not tell the user about an error", exc_info=True)


async def shop_error(event: ErrorEvent, answered: AnsweredQueries) -> None:
    """Receives: errors of type ShopError raised by any handler."""
    exc = event.exception
    assert isinstance(exc, ShopError)
    log.info("refused update %s: %s", event.update.update_id, exc.key)
    await _reply(event, answered, refusal(exc, plain=False), refusal(exc, plain=True))


async def unexpected_error(event: ErrorEvent, alerts: AdminAlerts, answered: AnsweredQueries) -> None:
    """Receives: every other exception raised by a handler."""
    exc = event.exception
    if isinstance(exc, TelegramBadRequest) and any(h in exc.message.lower() for h in _HARMLESS):
        log.info("update %s: Telegram refused: %s", event.update.update_id, exc.message)
        return
    if isinstance(exc, TelegramRetryAfter):
        # A buyer faster than Telegram's flood limit (the session already waited once): the reply is
        # dropped, nothing is broken. A tap still gets its answer (answers are not flood-limited); a
        # message to the same chat would only meet the limit again.
        log.info("update %s: flood limit outlasted the wait (%s s)", event.update.update_id, exc.retry_after)
        query = event.update.callback_query
        if query is not None and query.id not in answered:
            await _reply(event, answered, "", tr_plain("error-throttled"))
        return
    log.error("update %s failed", event.update.update_id, exc_info=exc)
    await _reply(event, answered, tr("error-unexpected"), tr_plain("error-unexpected"))
    name = type(exc).__name__
    await alerts.notify(f"⚠️ update {event.update.update_id}: {html.escape(name)}", kind=f"error:{name}")
