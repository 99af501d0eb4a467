"""Reconciliation with Telegram's Stars ledger: a payment whose ``successful_payment`` update was never
processed (the process died, the database was briefly down) is found in ``getStarTransactions`` and
confirmed like any other. ``confirm_payment`` is idempotent, so charges already seen change nothing."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramServerError

from core.services import STARS, Services
from handlers.telegram.middlewares import CHANNEL
from handlers.telegram.outbox import OutboxSender

log = logging.getLogger(__name__)
PAGE = 100
CURSOR = "telegram.star_transactions"


class StarLedger:
    def __init__(self, bot: Bot, services: Services, outbox: OutboxSender) -> None:
        self.bot, self.services, self.outbox = bot, services, outbox

    async def reconcile(self) -> int:
        """Confirm every incoming Stars payment not yet recorded. Returns how many were new."""
        try:
            return await self._reconcile()
        except (TelegramNetworkError, TelegramServerError) as e:
            log.warning("Stars ledger not reachable (%s); trying again at the next run", e.message)
            return 0

    async def _reconcile(self) -> int:
        found = 0
        offset = await self.services.cursors.get(CURSOR)  # everything before it was reconciled already
        while True:
            page = (await self.bot.get_star_transactions(offset=offset, limit=PAGE)).transactions
            for tx in page:
                source = tx.source
                payload = getattr(source, "invoice_payload", None)
                user = getattr(source, "user", None)
                if tx.receiver is not None or payload is None or user is None:
                    continue  # outgoing (a refund), or not an invoice payment by a user
                payer = await self.services.users.ensure(CHANNEL, str(user.id))
                result = await self.services.orders.confirm_payment(
                    "telegram", tx.id, payload, tx.amount, STARS, payer_id=payer.id
                )
                if not result.replay:
                    found += 1
                    log.warning(
                        "reconciled Stars payment %s for order %s that no update had reported", tx.id, payload
                    )
            offset += len(page)
            await self.services.cursors.advance(CURSOR, offset)
            if len(page) < PAGE:
                break
        if found:
            self.outbox.wake()
        return found
