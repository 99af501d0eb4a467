"""The WeChat outbox sender: delivers the outbox's messages to WeChat users as customer-service (客服) texts,
within WeChat's limits, never Telegram's pacing.

Each round claims the channel's due messages, reads what the shop knows of their users' windows
(``core.windows``) and sends each user's messages in order (users side by side). A message goes out in
steps (``handlers.wechat.messages``): texts of at most 2 KB, and for a WeChat Pay refund the injected
``pay_back`` call first. What each step did is kept (``progress``), so a message taken up again never
pays twice nor repeats the texts that went out.

- Window closed (45015) or its quota used (45047), or known to be (the window ran out, or WeChat refused
  this user since they last wrote): the message is **parked**, not failed, no admin told, and the user's
  other messages are not tried; all are released when the user next writes, taps, follows, scans or pays
  (``WechatWindowService``). A broadcast's message is not parked: one that cannot go now is failed.
- Except, with ``templates`` (WECHAT_TEMPLATE_REMINDER), a membership reminder: it goes as a template
  message instead of waiting (``handlers.wechat.templates``). A buyer who unfollowed (43004) or a field
  WeChat refuses (47003, a bug of ours: logged as an error) fails it for good; a template id WeChat does
  not know (40037, the setting is wrong) is logged once and reminders wait for the window as without it;
  the template quota of the day used up (45009) postpones reminders to midnight in Beijing; anything else
  is retried as a text is.
- Daily quota (45009): nothing is sent, for anyone, until the next midnight in Beijing (UTC+8), when
  WeChat counts again; the messages wait without an attempt counted.
- Network errors, 5xx, a token still refused after the client fetched a new one, codes we have no answer
  for: retried with backoff (``MAX_ATTEMPTS``), and the round pauses briefly rather than fail every
  message against an unreachable WeChat. A user WeChat does not know (40003) or who unfollowed (43004) is
  not retried.
- 45002 (text too long) cannot happen: texts are cut by UTF-8 bytes below WeChat's limit. Should it, the
  message is failed and logged, never retried into a loop.

A message is marked sent only after WeChat took its last text, so a crash means a resend, never a loss."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import aiohttp

from core.errors import BroadcastWithdrawn, ShopError
from core.messages import Broadcast, RefundDue
from core.resilience import Backoff
from core.services import Services
from core.services.outbox import OutboxMessage
from core.windows import CHANNEL
from handlers.wechat.errors import (
    ARGUMENT_INVALID,
    INVALID_TEMPLATE_ID,
    DailyQuota,
    QuotaUsed,
    TextTooLong,
    WechatApiError,
    WindowClosed,
)
from handlers.wechat.messages import (
    ACTS_FIRST,
    AdminAlert,
    Alerts,
    PayBack,
    Step,
    WxOutgoing,
    gave_up,
    render,
)
from handlers.wechat.quota import RoundUser, backoff, next_beijing_midnight
from handlers.wechat.templates import Templates
from handlers.wechat.texts import Texts, xml_safe

log = logging.getLogger(__name__)

NO_PAY_BACK_RETRY = timedelta(minutes=15)  # a WeChat Pay refund waits this long for a way to make it
# WeChat's codes that no retry changes: an openid unknown to the account, a user who unfollowed
PERMANENT = frozenset({40003, 43004})
# WeChat away: its "system busy" (-1), and the API client's code for a call that got no answer of WeChat's
# (a timeout, an HTTP error: ``handlers.wechat.api.TRANSPORT``). The round pauses rather than try the rest.
UNREACHABLE = frozenset({-1, -2})


class TextApi(Protocol):
    """What the sender needs of the official-account API (``handlers.wechat.api.WechatApi``): one
    customer-service text to ``openid``, raising ``handlers.wechat.errors`` for WeChat's refusals."""

    async def send_text(self, openid: str, text: str) -> None: ...


PayBackCall = Callable[[RefundDue, OutboxMessage], Awaitable[None]]


class _Stop(Exception):
    """The message ends here for now (parked, postponed, retried or failed); nothing more to do."""


class _Sent(_Stop):
    """The message went another way than its texts (a template message): it is done."""


class WechatSender:
    def __init__(
        self,
        services: Services,
        api: TextApi,
        texts: Texts,
        public_url: str | None = None,
        pay_back: PayBackCall | None = None,
        *,
        alerts: Alerts | None = None,
        templates: Templates | None = None,
        batch: int = 50,
        bulk: int = 20,
        concurrency: int = 8,
        idle_poll: float = 1.0,
        outage_backoff: Backoff | None = None,
    ) -> None:
        self.services, self.api, self.texts = services, api, texts
        self.public_url, self.pay_back, self.alerts = public_url, pay_back, alerts
        self.templates = templates  # None: nothing goes as a template message, all wait for the window
        self.templates_paused_until: datetime | None = None  # the template quota of the day is used up
        self.batch, self.bulk, self.concurrency, self.idle_poll = batch, bulk, concurrency, idle_poll
        self.outage_backoff = outage_backoff or Backoff(first=idle_poll, cap=60.0)
        self.paused_until: datetime | None = None  # nothing is sent before (daily quota, WeChat away)
        self._outages = 0  # network failures in a row
        self._wake = asyncio.Event()
        self._round_failing = False

    def wake(self) -> None:
        """A message was written or released: look now rather than after ``idle_poll``."""
        self._wake.set()

    async def run(self, stop_event: asyncio.Event) -> None:
        """Send rounds until ``stop_event`` is set; a failing round (the database away) is logged once
        and retried with backoff."""
        failures = 0
        while not stop_event.is_set():
            try:
                handled = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self._round_failing:
                    self._round_failing = True
                    log.exception("wechat outbox: a round failed; retrying with backoff")
                await self._idle(stop_event, self.outage_backoff.delay(failures))
                failures += 1
                continue
            failures = 0
            if self._round_failing:
                self._round_failing = False
                log.info("wechat outbox: rounds go through again")
            if not handled:
                await self._idle(stop_event, self.idle_poll)

    async def _idle(self, stop_event: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waiters = [asyncio.ensure_future(stop_event.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w

    def _paused(self) -> bool:
        now = self.services.ctx.clock.now()
        return self.paused_until is not None and now < self.paused_until

    async def send_due(self) -> int:
        """One round: what is due now; returns how many messages were handled (sent, parked, retried)."""
        if self._paused():
            return 0
        outbox = self.services.outbox
        batch = await outbox.claim(CHANNEL, limit=self.batch, bulk=self.bulk)
        if not batch:
            return 0
        known_at = self.services.ctx.clock.now()
        windows = await self.services.wechat_windows.windows([m.user_id for m in batch])
        users: dict[int, RoundUser] = {}
        mine: dict[int, list[OutboxMessage]] = defaultdict(list)
        for m in batch:
            users.setdefault(m.user_id, RoundUser(windows.get(m.user_id), known_at))
            mine[m.user_id].append(m)
        sent: list[int] = []
        gate = asyncio.Semaphore(self.concurrency)
        try:
            failed = await asyncio.gather(
                *(self._user(msgs, users[uid], sent, gate) for uid, msgs in mine.items()),
                return_exceptions=True,
            )
        finally:
            # one transaction for the round: a crash before it means a resend, never a loss
            await outbox.sent_many(sent)
            await self._count(users)
        for error in failed:
            if isinstance(error, BaseException):
                raise error
        return len(batch)

    async def _count(self, users: dict[int, RoundUser]) -> None:
        """What went out within each opening, for the next rounds to know (bookkeeping: WeChat counts)."""
        spent = [(uid, opening, n) for uid, u in users.items() for opening, n in u.spent.items()]
        try:
            await self.services.wechat_windows.count_sent(spent)
        except Exception:
            log.warning("wechat outbox: counting a round's messages in their windows failed", exc_info=True)

    async def _user(
        self, msgs: Sequence[OutboxMessage], user: RoundUser, sent: list[int], gate: asyncio.Semaphore
    ) -> None:
        async with gate:
            for m in msgs:
                if await self._deliver(m, user):
                    sent.append(m.id)

    async def _deliver(self, m: OutboxMessage, user: RoundUser) -> bool:
        """Take one message as far as it can go now; True once all its steps are done (the caller marks
        it sent), else it was parked, postponed, rescheduled or set aside here."""
        progress = m.progress
        out = WxOutgoing(self.services, self.texts, m, self.public_url, self.alerts)
        try:
            if self._paused():
                raise await self._until_resumed(m, progress, "sending paused")
            if user.closed(self.services.ctx.clock.now()) and not _acts_first(m):
                raise await self._closed(m, user, progress, user.known_at, "window closed (known)")
            steps = await render(out)
            for i in range(progress, len(steps)):
                progress = await self._step(m, user, steps[i], i, progress)
        except _Sent:
            return True
        except _Stop:
            return False
        except BroadcastWithdrawn as e:  # cancelled while this message was on its way: not sent
            await self.services.outbox.withdrawn(m.id, e.key)
            return False
        except ShopError as e:  # the order changed meanwhile (e.g. refunded): nothing left to say
            log.info("outbox %s (%s) no longer applies: %s", m.id, m.kind, e.key)
            await self.services.outbox.undeliverable(m.id, e.key)
            if isinstance(m.message, RefundDue) and progress == 0:  # money still owed: a hand must do it
                await gave_up(out, e.key, progress)
            return False
        except Exception as e:
            log.exception("outbox %s (%s) failed", m.id, m.kind)
            await self._retry(out, progress, type(e).__name__)
            return False
        self._outages = 0
        return True

    async def _step(self, m: OutboxMessage, user: RoundUser, step: Step, i: int, progress: int) -> int:
        """Do step ``i``; returns the progress after it, or raises ``_Stop`` once the message is dealt
        with for now."""
        if isinstance(step, PayBack):
            if self.pay_back is None:
                log.warning("outbox %s: a WeChat Pay refund waits: no refund call is configured", m.id)
                raise await self._postpone(
                    m, progress, "no WeChat Pay refund call configured", NO_PAY_BACK_RETRY
                )
            await self.pay_back(step.message, m)
            await self.services.outbox.advance(m.id, i + 1)  # the money went back: never again
            return i + 1
        if isinstance(step, AdminAlert):
            await self._out(m).alert(step.text, step.kind)
            await self.services.outbox.advance(m.id, i + 1)  # told once, however often the text waits
            return i + 1
        text = xml_safe(step)
        if not text.strip():  # nothing to show (a broadcast of markup only): WeChat refuses an empty text
            return i + 1
        now = self.services.ctx.clock.now()
        if user.closed(now):
            raise await self._closed(m, user, progress, user.known_at, "window closed (known)")
        try:
            await self.api.send_text(m.external_id, text)
        except (WindowClosed, QuotaUsed) as e:
            raise await self._closed(m, user, progress, now, f"{e.errcode} {e.errmsg}") from None
        except DailyQuota as e:
            self.paused_until = max(self.paused_until or now, next_beijing_midnight(now))
            log.warning(
                "wechat daily quota used up (%s): nothing is sent until %s", e.errcode, self.paused_until
            )
            raise await self._until_resumed(m, progress, "45009 daily quota") from None
        except TextTooLong as e:
            log.error(
                "outbox %s (%s): WeChat found a %d-byte text too long", m.id, m.kind, len(text.encode())
            )
            await self.services.outbox.undeliverable(m.id, f"{e.errcode} {e.errmsg}")
            raise _Stop from None
        except WechatApiError as e:
            if e.errcode in UNREACHABLE:
                self._outage(now)
            if e.errcode in PERMANENT:
                log.info("outbox %s: WeChat refused user %s for good (%s)", m.id, m.user_id, e.errcode)
                await self.services.outbox.undeliverable(m.id, f"{e.errcode} {e.errmsg}")
                raise _Stop from None
            await self._retry(self._out(m), progress, f"{e.errcode} {e.errmsg}")
            raise _Stop from None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._outage(now)
            await self._retry(self._out(m), progress, type(e).__name__)
            raise _Stop from None
        user.sent_one(now)
        return i + 1

    def _out(self, m: OutboxMessage) -> WxOutgoing:
        return WxOutgoing(self.services, self.texts, m, self.public_url, self.alerts)

    async def _closed(
        self, m: OutboxMessage, user: RoundUser, progress: int, tried_at: datetime, why: str
    ) -> _Stop:
        """The user's window is closed: park the message (a broadcast's fails; one ``templates`` covers
        goes as a template message) and every other of theirs this round; an opening after ``tried_at``
        makes it due again at once instead."""
        if isinstance(m.message, Broadcast):
            await self.services.outbox.undeliverable(m.id, f"not sent: {why}")
            return _Stop()
        if progress == 0 and self.templates is not None and self.templates.covers(m.message):
            done = await self._template(m, self.templates)
            if done is not None:
                return done
        if await self.services.wechat_windows.park(
            m.id, m.user_id, tried_at=tried_at, why=why, progress=progress
        ):
            log.info("outbox %s (%s) parked until user %s writes: %s", m.id, m.kind, m.user_id, why)
            user.parked = True
        else:
            log.info(
                "outbox %s (%s): user %s opened the window meanwhile; due again", m.id, m.kind, m.user_id
            )
        return _Stop()

    async def _template(self, m: OutboxMessage, templates: Templates) -> _Stop | None:
        """Send ``m`` as a template message (its window is closed); None: WeChat does not know the
        template, so the message waits for the window as if there were none."""
        now, why = self.services.ctx.clock.now(), "45009 template quota used up today"
        if self.templates_paused_until is not None and now < self.templates_paused_until:
            await self.services.outbox.postpone(m.id, until=self.templates_paused_until, why=why)
            return _Stop()
        try:
            said = await templates.send(self._out(m))
        except DailyQuota:
            self.templates_paused_until = until = next_beijing_midnight(now)
            log.warning("wechat template quota used up (45009): reminders wait until %s", until)
            await self.services.outbox.postpone(m.id, until=until, why=why)
            return _Stop()
        except WechatApiError as e:
            error = f"{e.errcode} {e.errmsg}"
            if e.errcode == INVALID_TEMPLATE_ID:
                log.error("WECHAT_TEMPLATE_REMINDER: WeChat has no such template (%s); reminders wait", error)
                self.templates = None
                return None
            if e.errcode not in PERMANENT and e.errcode != ARGUMENT_INVALID:
                if e.errcode in UNREACHABLE:
                    self._outage(now)
                await self._retry(self._out(m), 0, error)
                return _Stop()
            if e.errcode == ARGUMENT_INVALID:  # our fields broke WeChat's rules: a bug, not retried
                log.error("outbox %s (%s): WeChat refused the template's fields: %s", m.id, m.kind, error)
            await self.services.outbox.undeliverable(m.id, error)
            return _Stop()
        if said:
            log.info("outbox %s (%s) went as a template message (window closed)", m.id, m.kind)
        return _Sent()

    async def _until_resumed(self, m: OutboxMessage, progress: int, why: str) -> _Stop:
        """Sending is paused: the message waits, no attempt counted, until the pause ends."""
        assert self.paused_until is not None
        await self.services.outbox.postpone(m.id, until=self.paused_until, why=why, progress=progress)
        return _Stop()

    async def _postpone(self, m: OutboxMessage, progress: int, why: str, after: timedelta) -> _Stop:
        until = self.services.ctx.clock.now() + after
        await self.services.outbox.postpone(m.id, until=until, why=why, progress=progress)
        return _Stop()

    def _outage(self, now: datetime) -> None:
        delay = timedelta(seconds=self.outage_backoff.delay(self._outages))
        self._outages += 1
        self.paused_until = max(self.paused_until or now, now + delay)
        log.warning("wechat unreachable: sending pauses until %s", self.paused_until)

    async def _retry(self, out: WxOutgoing, progress: int, error: str) -> None:
        m = out.item
        if not await self.services.outbox.retry(
            m.id, after=backoff(m.attempts), error=error, progress=progress
        ):
            log.error("outbox %s (%s): giving up after repeated %s", m.id, m.kind, error)
            await gave_up(out, error, progress)


def _acts_first(m: OutboxMessage) -> bool:
    """A message whose first step needs no window, not taken yet (a refund's money, the admins told)."""
    return isinstance(m.message, ACTS_FIRST) and m.progress == 0
