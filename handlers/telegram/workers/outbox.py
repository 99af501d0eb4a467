"""The outbox sender: delivers every message written to the outbox (keys, refunds, notices).

Limits kept: at most 30 messages a second overall, one a second per private chat, 20 a minute per group.
A 429 is honoured (that chat waits ``retry_after``); network errors and 5xx are retried with backoff; a user
who blocked the bot (403) is marked so and not retried. A message is marked sent only after Telegram
accepted it, so a crash means a resend, never a loss.

Outages: while Telegram cannot be reached the sender stops claiming (the messages keep their attempts) and
asks Telegram again after a backoff; while the database is away its rounds fail and are retried after a
backoff. Either is logged once when it starts and once when it ends (``handlers.telegram.health``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.utils.i18n import I18n

from core.errors import BroadcastWithdrawn, ShopError
from core.messages import Broadcast, KeysDelivered
from core.models import RevealedKeys
from core.resilience import Backoff
from core.services import Services
from core.services.outbox import OutboxMessage
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.health import Health
from handlers.telegram.middlewares import UserCache
from handlers.telegram.pacing import GroupPacer, SendPacer
from handlers.telegram.telemetry import NoTelemetry, Telemetry
from handlers.telegram.workers.messages import Outgoing, deliver, gave_up

if TYPE_CHECKING:
    from handlers.telegram.shared import RedisShared

log = logging.getLogger(__name__)
CHANNEL = "telegram"


MARK_SENT_EVERY = 2.0  # seconds: how often a long round marks what it has sent (the lease is 2 minutes)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** min(attempts, 9)))


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        services: Services,
        i18n: I18n,
        *,
        admin_ids: list[int] | None = None,
        per_second: float = 30.0,
        private_interval: float = 1.0,
        group_interval: float = 3.0,
        group_per_minute: int = 20,
        group_gap: float = 1.0,
        idle_poll: float = 1.0,
        bulk_per_second: float = 20.0,
        bulk_per_round: int = 20,
        user_cache: UserCache | None = None,
        alerts: AdminAlerts | None = None,
        shared: RedisShared | None = None,
        telemetry: Telemetry | None = None,
        health: Health | None = None,
        outage_backoff: Backoff | None = None,
    ) -> None:
        self.bot, self.services, self.i18n = bot, services, i18n
        self.telemetry: Telemetry = telemetry or NoTelemetry()
        self.health = health or Health()
        # between failed rounds, and between questions to a Telegram that could not be reached
        self.outage_backoff = outage_backoff or Backoff(first=idle_poll, cap=30.0)
        self._round_failing = False  # a round failed for a reason that is no outage (logged once)
        self.admin_ids = admin_ids or []
        self.alerts = alerts or AdminAlerts(bot, self.admin_ids)
        # With ``shared`` (several instances), the user cache and the paces below are kept in Redis for all.
        self.user_cache = user_cache or (shared.user_cache() if shared else UserCache())
        # shared with the handlers' own sends (session.BotRequests)
        self.pacer = shared.send_pacer("send", per_second) if shared else SendPacer(per_second)
        # What the handlers post in groups (shared cards, replies there) keeps each group's allowance.
        self.groups = (
            shared.group_pacer(group_per_minute, gap=group_gap)
            if shared
            else GroupPacer(group_per_minute, gap=group_gap)
        )
        # Broadcasts take at most ``bulk_per_second`` of that (the rest stays for replies and invoices), in
        # rounds of at most ``bulk_per_round`` messages, claimed only after every due message of the shop's
        # own: a key delivery written while a broadcast runs waits one short round at most.
        self.bulk_pacer = shared.send_pacer("bulk", bulk_per_second) if shared else SendPacer(bulk_per_second)
        self.bulk_per_round = bulk_per_round
        self.private_interval, self.group_interval = private_interval, group_interval
        self.idle_poll = idle_poll
        self._wake = asyncio.Event()
        self._marked_at = time.monotonic()
        self._next_chat: dict[str, float] = defaultdict(float)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        failures = 0  # rounds failed in a row
        while True:
            if self.health.telegram.up is False:
                await self._until_telegram_answers()
            try:
                sent = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._round_failed(e)
                await self._idle(self.outage_backoff.delay(failures))
                failures += 1
                continue
            failures = 0
            self.health.database.ok()  # the round claimed from it
            if self._round_failing:
                self._round_failing = False
                log.info("outbox: rounds go through again")
            if not sent:
                await self._idle(self.idle_poll)

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a message is written meanwhile (``wake``). ``asyncio.timeout``, not
        ``wait_for``: on Python 3.11 ``wait_for`` drops a cancel that lands with the wake-up, and the
        sender would never stop."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _round_failed(self, error: Exception) -> None:
        """An outage is its dependency's to log (once); anything else is logged with its traceback when
        rounds start failing, not on every round after."""
        owner = self.health.owner(error)
        if owner is not None:
            owner.failed(error)
        elif not self._round_failing:
            self._round_failing = True
            log.exception("outbox: a round failed; retrying with backoff")
        else:
            log.debug("outbox: a round failed again", exc_info=True)

    async def _until_telegram_answers(self) -> None:
        """Claim nothing until Telegram answers again (a cheap getMe after each backoff): messages are
        not spent on attempts that cannot succeed."""
        attempt = 0
        while self.health.telegram.up is False:
            await asyncio.sleep(self.outage_backoff.delay(attempt))
            attempt += 1
            try:
                await self.bot.get_me()
            except Exception as e:
                if self.health.owner(e) is not self.health.telegram:
                    return  # Telegram answered, if only to refuse: the rounds handle that per message
                self.health.telegram.failed(e)
            else:
                self.health.telegram.ok()

    async def drain(self) -> int:
        """Send what is due now; returns how many messages were handled."""
        batch = await self.services.outbox.claim(CHANNEL, limit=100, bulk=self.bulk_per_round)
        if not batch:
            return 0
        revealed = await self._reveal(batch)
        by_chat: dict[str, list[OutboxMessage]] = defaultdict(list)
        for m in batch:
            by_chat[m.external_id].append(m)
        sent: list[int] = []
        try:
            # Every chat runs to its end, even when another fails: what it sends is then marked below.
            failed = await asyncio.gather(
                *(self._chat(chat, msgs, revealed, sent) for chat, msgs in by_chat.items()),
                return_exceptions=True,
            )
        finally:
            # One transaction for the round: a crash before it means a resend, never a loss.
            await self.services.outbox.sent_many(sent)
        for error in failed:
            if isinstance(error, BaseException):
                raise error
        return len(batch)

    async def _reveal(self, batch: list[OutboxMessage]) -> dict[str, RevealedKeys | ShopError]:
        """The keys of every delivery in the round, revealed (and audited) in one transaction. Should that
        fail as a whole, each delivery reveals its own keys as it goes."""
        wanted = [(m.message.order_ref, m.user_id) for m in batch if isinstance(m.message, KeysDelivered)]
        if not wanted:
            return {}
        try:
            return await self.services.orders.reveal_many(wanted, actor="outbox", reason="delivery")
        except Exception:
            log.exception("outbox: revealing a round's keys together failed; one by one instead")
            return {}

    async def _chat(
        self,
        chat: str,
        msgs: list[OutboxMessage],
        revealed: dict[str, RevealedKeys | ShopError],
        sent: list[int],
    ) -> None:
        for m in msgs:
            if self.health.telegram.up is False:
                return  # unsent, so unmarked: offered again once the claim's lease runs out
            if isinstance(m.message, Broadcast):
                await self.bulk_pacer.turn()
            await self._pace(chat)
            keys = revealed.get(m.message.order_ref) if isinstance(m.message, KeysDelivered) else None
            if await self._send(m, keys):
                sent.append(m.id)
                await self._mark_if_due(sent)

    async def _mark_if_due(self, sent: list[int]) -> None:
        """Mark what went out so far every ``MARK_SENT_EVERY`` seconds, not only when the round ends: a
        round paced by one slow chat could otherwise outlast the claim's lease, and another sender would
        send its messages again."""
        now = time.monotonic()
        if now - self._marked_at < MARK_SENT_EVERY:
            return
        self._marked_at = now
        ids = sent[:]
        del sent[:]
        await self.services.outbox.sent_many(ids)

    async def _pace(self, chat: str) -> None:
        now = time.monotonic()
        wait = self._next_chat[chat] - now
        if wait > 0:
            await asyncio.sleep(wait)
        interval = self.group_interval if chat.startswith("-") else self.private_interval
        self._next_chat[chat] = max(now, self._next_chat[chat]) + interval
        await self.pacer.turn()

    async def _send(self, m: OutboxMessage, revealed: RevealedKeys | ShopError | None = None) -> bool:
        """Deliver one message; True once Telegram took it (the caller marks it sent), else it was
        rescheduled or set aside here."""
        outbox = self.services.outbox
        try:
            locale = m.language if m.language in self.i18n.available_locales else "en"
            with self.i18n.context(), self.i18n.use_locale(locale):
                await deliver(self._outgoing(m, revealed))
        except TelegramRetryAfter as e:
            self.telemetry.rate_limited("outbox")
            self._next_chat[m.external_id] = time.monotonic() + e.retry_after
            if not await outbox.retry(m.id, after=timedelta(seconds=e.retry_after), error="429 retry_after"):
                await self._gave_up(m, "429 retry_after")
        except TelegramForbiddenError as e:
            log.info("outbox %s: user %s blocked the bot", m.id, m.user_id)
            await self.services.users.set_bot_blocked(m.user_id, True)
            await self.user_cache.forget(m.external_id)
            await outbox.undeliverable(m.id, f"403 {e.message}")
        except TelegramBadRequest as e:
            log.warning("outbox %s (%s) refused by Telegram: %s", m.id, m.kind, e.message)
            await outbox.undeliverable(m.id, f"400 {e.message}")
        except (TelegramNetworkError, TelegramServerError, OSError) as e:
            if isinstance(e, TelegramNetworkError):  # unreachable, not one refused request: pause sending
                self.health.telegram.failed(e)
            if not await outbox.retry(m.id, after=backoff(m.attempts), error=type(e).__name__):
                await self._gave_up(m, type(e).__name__)
        except BroadcastWithdrawn as e:  # cancelled while this message was on its way: not sent
            await outbox.withdrawn(m.id, e.key)
        except ShopError as e:  # the order changed meanwhile (e.g. refunded): nothing left to say
            log.info("outbox %s (%s) no longer applies: %s", m.id, m.kind, e.key)
            await outbox.undeliverable(m.id, e.key)
        except Exception as e:
            log.exception("outbox %s (%s) failed", m.id, m.kind)
            if not await outbox.retry(m.id, after=backoff(m.attempts), error=type(e).__name__):
                await self._gave_up(m, type(e).__name__)
        else:
            self.telemetry.delivered(m.kind)
            self.health.telegram.ok()
            return True
        return False

    async def _gave_up(self, m: OutboxMessage, error: str) -> None:
        log.error("outbox %s (%s): giving up after repeated %s", m.id, m.kind, error)
        await gave_up(self._outgoing(m), error)

    def _outgoing(self, m: OutboxMessage, revealed: RevealedKeys | ShopError | None = None) -> Outgoing:
        return Outgoing(self.bot, self.services, self.alerts, m, revealed)
