"""Recovering payments: Telegram's Stars ledger, and payment notices whose processing failed.

A Stars payment whose ``successful_payment`` update was never processed (the process died, the database
was briefly down) is found in ``getStarTransactions``, recorded as a payment notice and confirmed like
any other; confirmation is idempotent, so charges already seen change nothing. Each ledger entry is
handled on its own: one that cannot be confirmed is refunded to its payer and reported to the admins,
and never stops the entries after it from being recovered.
"""

from __future__ import annotations

import html
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.types import StarTransaction

from core.models import STARS, Charge
from core.services import Services
from core.services.notices import NoticeOutcome
from core.services.transient import is_transient
from handlers.telegram.alerts import AdminAlerts
from handlers.telegram.middlewares import CHANNEL
from handlers.telegram.workers.outbox import OutboxSender

log = logging.getLogger(__name__)
PAGE = 100
CURSOR = "telegram.star_transactions"
PROVIDER = "telegram"
MAX_PAYLOAD_BYTES = 128  # Telegram's limit for an invoice payload: anything longer is not ours


class StarLedger:
    def __init__(
        self, bot: Bot, services: Services, outbox: OutboxSender, alerts: AdminAlerts | None = None
    ) -> None:
        self.bot, self.services, self.outbox = bot, services, outbox
        self.alerts = alerts or outbox.alerts

    async def reconcile(self) -> int:
        """Confirm every incoming Stars payment not yet recorded. Returns how many were new."""
        try:
            found = await self._reconcile()
        except (TelegramNetworkError, TelegramServerError) as e:
            # Telegram is away: logged once by its dependency, not at every run; the next run tries again.
            self.outbox.health.telegram.failed(e)
            return 0
        self.outbox.health.telegram.ok()
        return found

    async def _reconcile(self) -> int:
        found = 0
        offset = await self.services.cursors.get(CURSOR)  # everything before it was reconciled already
        while True:
            page = (await self.bot.get_star_transactions(offset=offset, limit=PAGE)).transactions
            for i, tx in enumerate(page):
                try:
                    found += await self._entry(tx)
                except Exception as e:
                    if is_transient(e):
                        # The database is unavailable: nothing could be recorded. Stop before this entry
                        # and read it again at the next run.
                        log.warning("Stars reconciliation paused at %s: %s", tx.id, type(e).__name__)
                        await self._advance(offset + i)
                        return found
                    # Something about this one entry: report it and go on with the next ones.
                    log.exception("Stars ledger entry %s could not be handled", tx.id)
                    await self._alert(tx, f"could not be handled ({type(e).__name__}); check it by hand")
            offset += len(page)
            await self._advance(offset)
            if len(page) < PAGE:
                break
        if found:
            self.outbox.wake()
        return found

    async def _advance(self, position: int) -> None:
        await self.services.cursors.advance(CURSOR, position)

    async def _entry(self, tx: StarTransaction) -> int:
        """Record and process one ledger entry. Returns 1 if it was a payment not seen before."""
        source = tx.source
        payload = getattr(source, "invoice_payload", None)
        user = getattr(source, "user", None)
        if tx.receiver is not None or payload is None or user is None:
            return 0  # outgoing (a refund), or not an invoice payment by a user
        payer = await self.services.users.ensure(CHANNEL, str(user.id))
        payments = self.services.payments
        charge = Charge(PROVIDER, tx.id, str(payload), tx.amount, STARS, payer_id=payer.id)
        if not isinstance(payload, str) or not 1 <= len(payload.encode()) <= MAX_PAYLOAD_BYTES:
            result = await payments.refund_unconfirmable(charge, reason="bad_payload")
            if not result.replay:
                await self._alert(tx, "has a payload that is no order of ours; refunding it to the payer")
            return 0
        outcome = await payments.receive_notice(charge, raw=tx.model_dump(mode="json", exclude_none=True))
        if outcome.ok:
            assert outcome.result is not None
            if outcome.result.replay:
                return 0
            res = outcome.result
            log.warning(
                "reconciled Stars payment %s for order %r that no update had reported: %s%s",
                tx.id,
                payload[:64],
                res.outcome,
                f" ({res.reason}, refunded to the payer)" if res.must_refund else "",
            )
            return 1
        if outcome.transient:
            return 0  # recorded: the payment-notices job retries it
        result = await payments.refund_unconfirmable(
            charge, reason="unconfirmable", notice_id=outcome.notice_id
        )
        if not result.replay:
            await self._alert(tx, f"could not be confirmed ({outcome.error}); refunding it to the payer")
        return 0

    async def _alert(self, tx: StarTransaction, what: str) -> None:
        ref = str(getattr(tx.source, "invoice_payload", ""))[:32]
        await self.alerts.notify(
            f"⚠️ Stars reconciliation: charge {html.escape(tx.id)} ({tx.amount} ⭐, order"
            f" “{html.escape(ref)}”) {html.escape(what)}",
            kind=f"reconcile:{tx.id}",
        )


class NoticeReporter:
    """What the payment-notices job reports back: wake the sender for what went through, and tell the
    admins about notices that keep failing (rate-limited; retrying goes on regardless)."""

    def __init__(self, outbox: OutboxSender, alerts: AdminAlerts) -> None:
        self.outbox, self.alerts = outbox, alerts

    async def __call__(self, done: int, stuck: list[NoticeOutcome]) -> None:
        if done:
            self.outbox.wake()
        if stuck:
            lines = [
                f"• charge {html.escape(o.charge_id)}, order {html.escape(o.order_ref[:32])}:"
                f" {o.attempts} attempts, {html.escape(o.error or '?')[:120]}"
                for o in stuck[:10]
            ]
            await self.alerts.notify(
                f"⚠️ {len(stuck)} payment(s) received but not yet processed; still retrying:\n"
                + "\n".join(lines),
                kind="payment-notices-stuck",
            )
