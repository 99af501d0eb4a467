"""Middlewares: the shop user behind every update, per-user throttling, and the user's language."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from aiogram import BaseMiddleware
from aiogram.enums import ChatType
from aiogram.types import Chat, TelegramObject, Update
from aiogram.types import User as TgUser
from aiogram.utils.i18n import I18n, I18nMiddleware

from core.models import User, UserIdentity
from core.services import Services
from handlers.telegram.ui.text import pick_locale

if TYPE_CHECKING:
    from handlers.telegram.shared import RedisShared

log = logging.getLogger(__name__)
CHANNEL = "telegram"

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class Newcomer(enum.Enum):
    """What the user cache holds for someone looked up lately and found to have no row (a newcomer
    browsing): no read per tap until a write creates their row."""

    NEWCOMER = "newcomer"


NEWCOMER = Newcomer.NEWCOMER


class UserCache:
    """Shop users by Telegram id, for a few seconds: every update needs its user, and users rarely change.

    The core re-reads the user inside every purchase transaction (blocklist, phone), so a stale copy here
    can at worst answer in the previous language for ``ttl`` seconds; changes (language, phone,
    blocked-the-bot) forget the entry at once. This one lives in the process's memory; with several
    instances, ``shared.SharedUserCache`` keeps the entries in Redis, so a change forgets them for all."""

    def __init__(self, ttl: float = 30.0, max_size: int = 50_000) -> None:
        self.ttl, self.max_size = ttl, max_size
        self._users: dict[int, tuple[User | Newcomer, float]] = {}

    async def lookup(self, tg_id: int) -> User | Newcomer | None:
        """The cached user, ``NEWCOMER`` (looked up lately: no row), or None (not cached)."""
        hit = self._users.get(tg_id)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    async def put(self, tg_id: int, user: User | Newcomer) -> None:
        """Cache the user, or ``NEWCOMER``: no row. Whatever creates a newcomer's row forgets the mark."""
        if len(self._users) >= self.max_size:
            self._users.clear()
        self._users[tg_id] = (user, time.monotonic() + self.ttl)

    async def forget(self, tg_id: int | str) -> None:
        self._users.pop(int(tg_id), None)

    async def newcomer_stored(self, tg_id: int, user: User) -> None:
        """A newcomer's row, made by a write of this process: kept for their next updates, unless the
        newcomer mark went meanwhile (some other change of theirs forgot it, and ``user`` may be older)."""
        if await self.lookup(tg_id) is NEWCOMER:
            await self.put(tg_id, user)


class ShopUserMiddleware(BaseMiddleware):
    """Finds the shop user for the Telegram user behind the update, as ``data["shop_user"]`` (None for
    someone who never did anything that needed a row), and ``data["identity"]``, who they are on this
    channel. Looking around writes nothing: the row is created by the first write that needs it (a
    checkout creates it in its own transaction; others call ``services.users.stored``). Someone who writes
    to the bot has evidently unblocked it.

    Only private chats (and queries without a chat, such as pre-checkout) are looked up: group chatter
    reads nothing. A user who never picked a language with /language follows Telegram's current
    ``language_code`` on every update, cached or not, and the stored language follows too (the outbox
    writes to them in it). A stored user's @username follows likewise (admins look buyers up by it): a
    write only when it changed."""

    def __init__(self, cache: UserCache) -> None:
        self.cache = cache

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg: TgUser | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        services: Services = data["services"]
        if tg is not None and not tg.is_bot and (chat is None or chat.type == ChatType.PRIVATE):
            current = pick_locale(tg.language_code)
            handle = tg.username.lower() if tg.username else None
            data["identity"] = UserIdentity(CHANNEL, str(tg.id), current, handle)
            cached = await self.cache.lookup(tg.id)
            user = cached if isinstance(cached, User) else None
            # A newcomer browsing is remembered as such for a while (no read per tap); a payment always
            # looks again: the checkout it pays for may have been made by another instance. A pre-checkout
            # query is answered from the order, which names its buyer: no lookup on that 10-second path.
            if user is None and isinstance(event, Update) and event.pre_checkout_query is not None:
                data["shop_user"] = None
                return await handler(event, data)
            if cached is NEWCOMER and not (isinstance(event, Update) and _is_payment(event)):
                data["shop_user"] = None
                return await handler(event, data)
            if user is None:
                user = await services.users.find(CHANNEL, str(tg.id))
                if user is None:  # only looking around so far: no row until a write needs one
                    await self.cache.put(tg.id, NEWCOMER)
                    data["shop_user"] = None
                    return await handler(event, data)
                if user.bot_blocked:
                    await services.users.set_bot_blocked(user.id, False)
                    user = await services.users.get(user.id)
                await self.cache.put(tg.id, user)
            if not user.language_chosen and user.language != current:
                if await services.users.follow_language(user.id, current):
                    user = dataclasses.replace(user, language=current)
                else:  # chosen meanwhile (another process): the stored choice wins
                    user = await services.users.get(user.id)
                await self.cache.put(tg.id, user)
            if user.username != handle:  # a new @username (or none now): admins find them by it
                await services.users.follow_username(user.id, handle)
                user = dataclasses.replace(user, username=handle)
                await self.cache.put(tg.id, user)
            data["shop_user"] = user
        return await handler(event, data)


def _is_payment(update: Update) -> bool:
    return update.pre_checkout_query is not None or (
        update.message is not None and update.message.successful_payment is not None
    )


class ThrottleMiddleware(BaseMiddleware):
    """Per-user token buckets. Payments are never throttled: Telegram needs an answer, and money moved.

    A message in the private chat is answered with a new message, and Telegram takes about one message a
    second per chat, in short bursts of a few (TELEGRAM_LIMITS.md). So private messages get a bucket of
    Telegram's own per-chat rate and burst (``message_rate``, ``message_burst``) and the bot slows a user
    who writes faster before Telegram slows the bot: a message over the burst waits for its turn (up to
    ``message_wait`` seconds), one further ahead is dropped with a "slow down" notice. Replies therefore
    leave at the rate Telegram accepts instead of meeting 429s. Button taps (which mostly edit a message and
    answer the query, neither counted by Telegram) and group messages get a more generous bucket (``rate``,
    ``burst``) that only drops a flood.

    The buckets live in this process (``Throttle``), or with ``shared`` in Redis for every instance
    (``shared.SharedThrottle``): a user whose updates a load balancer spreads over several instances is
    limited as one user, as Telegram limits the bot's replies to them as one chat."""

    def __init__(
        self,
        i18n: I18n,
        rate: float = 2.0,
        burst: float = 8.0,
        *,
        message_rate: float = 1.0,
        message_burst: float = 3.0,
        message_wait: float = 3.0,
        shared: RedisShared | None = None,
    ) -> None:
        self.i18n = i18n
        taps, messages = Rate(rate, burst), Rate(message_rate, message_burst)
        self.state = shared.throttle(taps, messages) if shared is not None else Throttle(taps, messages)
        self.message_wait = message_wait

    async def _allow(self, user_id: int, event: Update) -> bool:
        msg = event.message
        if msg is not None and msg.chat.type == ChatType.PRIVATE:
            wait = await self.state.reserve(MESSAGES, user_id, self.message_wait)
            if wait:
                log.info("user %s writes faster than Telegram takes: waiting %.1f s", user_id, wait)
                await asyncio.sleep(wait)
        else:
            wait = await self.state.reserve(TAPS, user_id, 0.0)
        return wait is not None

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg: TgUser | None = data.get("event_from_user")
        if (
            tg is None
            or not isinstance(event, Update)
            or _is_payment(event)
            or await self._allow(tg.id, event)
        ):
            return await handler(event, data)
        log.info("throttled user %s", tg.id)
        i18n = self.i18n
        shop_user: User | None = data.get("shop_user")
        with i18n.use_locale(
            shop_user.language if shop_user and shop_user.language else pick_locale(tg.language_code)
        ):
            text = i18n.gettext("error-throttled")
        if event.callback_query is not None:
            await event.callback_query.answer(text)
        elif event.message is not None and event.message.chat.type == ChatType.PRIVATE:
            # once until an update of theirs is let through; the notice is a message too: it takes its
            # turn after the replies already on their way
            turn = await self.state.notice_turn(tg.id)
            if turn is None:
                return None
            if turn:
                await asyncio.sleep(turn)
            await event.message.answer(text)
        return None


class Rate(NamedTuple):
    """A token bucket's shape: ``per_second`` tokens a second, at most ``burst`` saved up."""

    per_second: float
    burst: float


Kind = Literal["taps", "messages"]
TAPS: Kind = "taps"
MESSAGES: Kind = "messages"


class Throttle:
    """The throttle's state in this process: per user, a bucket for button taps and group messages and one
    for private messages, and whether they were told to slow down since their last update let through."""

    def __init__(self, taps: Rate, messages: Rate) -> None:
        self.rates = {TAPS: taps, MESSAGES: messages}
        self._buckets = {TAPS: _Buckets(*taps), MESSAGES: _Buckets(*messages)}
        self._told: set[int] = set()

    async def reserve(self, kind: Kind, user_id: int, max_wait: float) -> float | None:
        """Seconds until the user's next ``kind`` token (0: now), taken; None if that is more than
        ``max_wait``. A token taken means they may be told to slow down again."""
        wait = self._buckets[kind].reserve(user_id, max_wait)
        if wait is not None:
            self._told.discard(user_id)
        return wait

    async def notice_turn(self, user_id: int) -> float | None:
        """The "slow down" notice's turn among the user's messages (seconds to wait; a message token is
        taken however far ahead), or None if they were told already since their last update let through."""
        if user_id in self._told:
            return None
        if len(self._told) > 100_000:
            self._told.clear()  # bounded memory; worst case someone is told twice
        self._told.add(user_id)
        return self._buckets[MESSAGES].reserve(user_id, math.inf)


class _Buckets:
    """A token bucket per user: ``rate`` tokens a second, at most ``burst`` saved up. A token may be
    reserved ahead of time (the bucket goes below zero), for an update that waits its turn."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[int, tuple[float, float]] = {}

    def reserve(self, user_id: int, max_wait: float) -> float | None:
        """Seconds until the user's next token (0: now), taken; None if that is more than ``max_wait``."""
        now = time.monotonic()
        tokens, at = self._buckets.get(user_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if len(self._buckets) > 100_000:
            self._buckets.clear()  # bounded memory; worst case someone gets a fresh burst
        wait = max(0.0, (1 - tokens) / self.rate)
        if wait > max_wait:
            self._buckets[user_id] = (tokens, now)
            return None
        self._buckets[user_id] = (tokens - 1, now)
        return wait


class ShopI18nMiddleware(I18nMiddleware):
    """The user's chosen language, else Telegram's language_code, else English (also ``data["locale"]``)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["locale"] = await self.get_locale(event, data)
        return await super().__call__(handler, event, data)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("shop_user")
        if user is not None and user.language in self.i18n.available_locales:
            return user.language
        tg: TgUser | None = data.get("event_from_user")
        return pick_locale(tg.language_code if tg else None)
