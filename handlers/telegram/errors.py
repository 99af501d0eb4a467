"""One error handler: shop refusals become translated replies; anything else is logged, reported to the
admins (rate-limited, without secrets) and answered with a generic apology. Never a traceback to a user.
An outage (the database or Redis away) is no bug: the user is asked to try again in a minute, the outage is
logged once by its dependency (``handlers.telegram.health``), and nobody is alerted.

A callback query is answered exactly once: when the handler already answered it (then failed), the
user gets a message in the private chat instead of a second answer, which Telegram would refuse."""

from __future__ import annotations

import html
import logging

from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import ErrorEvent

from core.errors import ShopError
from core.models import User
from core.services import Services
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.health import Health
from handlers.telegram.middlewares import CHANNEL, UserCache
from handlers.telegram.session import AnsweredQueries, replying
from handlers.telegram.ui.text import CALLBACK_ANSWER_MAX, clip, refusal, tr, tr_plain

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


async def unexpected_error(
    event: ErrorEvent,
    alerts: AdminAlerts,
    answered: AnsweredQueries,
    services: Services,
    user_cache: UserCache,
    shop_user: User | None = None,
    health: Health | None = None,
) -> None:
    """Receives: every other exception raised by a handler."""
    exc = event.exception
    update_id = event.update.update_id
    owner = health.owner(exc) if health is not None else None
    if health is not None and owner is not None and owner is not health.telegram:  # Telegram's: below
        owner.failed(exc)
        await _reply(event, answered, tr("error-unavailable"), tr_plain("error-unavailable"))
        return
    if isinstance(exc, TelegramBadRequest) and any(h in exc.message.lower() for h in _HARMLESS):
        log.info("update %s: Telegram refused: %s", update_id, exc.message)
        return
    if isinstance(exc, TelegramRetryAfter):
        # A user writing faster than Telegram's per-chat limit (the throttle slows them first; the session
        # already waited once): they simply get fewer replies; a message to the same chat would only meet
        # the limit again. A tap still gets its answer (answers are not flood-limited).
        log.info("update %s: flood limit, reply dropped (retry after %s s)", update_id, exc.retry_after)
        query = event.update.callback_query
        if query is not None and query.id not in answered:
            await _reply(event, answered, "", tr_plain("error-throttled"))
        return
    if isinstance(exc, TelegramForbiddenError):
        await _forbidden(exc, update_id, services, user_cache, shop_user)
        return
    log.error("update %s failed", event.update.update_id, exc_info=exc)
    await _reply(event, answered, tr("error-unexpected"), tr_plain("error-unexpected"))
    name = type(exc).__name__
    await alerts.notify(f"⚠️ update {event.update.update_id}: {html.escape(name)}", kind=f"error:{name}")


async def _forbidden(
    exc: TelegramForbiddenError, update_id: int, services: Services, cache: UserCache, user: User | None
) -> None:
    """The user blocked the bot while a reply was on its way (403 in their private chat): marked as such,
    like the outbox does, until they write again. Nothing is broken and nobody can be told."""
    chat_id = getattr(exc.method, "chat_id", None)
    if user is None and chat_id is not None:  # a newcomer the update itself may have stored (a checkout)
        user = await services.users.find(CHANNEL, str(chat_id))
    if user is not None and user.external_id == str(chat_id):
        await services.users.set_bot_blocked(user.id, True)
        await cache.forget(user.external_id)
        log.info("update %s: user %s blocked the bot", update_id, user.id)
    else:
        log.info("update %s: Telegram refused: %s", update_id, exc.message)
