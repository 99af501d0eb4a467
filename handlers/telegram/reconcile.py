"""Reconciliation with Telegram's Stars ledger: a payment whose ``successful_payment`` update was never
processed (the process died, the database was briefly down) is found in ``getStarTransactions`` and
confirmed like any other. ``confirm_payment`` is idempotent, so charges already seen change nothing."""

from __future__ import annotations

import logging

from aiogram import Bot

from core.services import STARS, Services
from handlers.telegram.middlewares import CHANNEL
from handlers.telegram.outbox import OutboxSender

log = logging.getLogger(__name__)
PAGE = 100


class StarLedger:
    def __init__(self, bot: Bot, services: Services, outbox: OutboxSender) -> None:
        self.bot, self.services, self.outbox = bot, services, outbox
        self.offset = 0  # transactions before this were reconciled by this process

    async def reconcile(self) -> int:
        """Confirm every incoming Stars payment not yet recorded. Returns how many were new."""
        found = 0
        while True:
            page = (await self.bot.get_star_transactions(offset=self.offset, limit=PAGE)).transactions
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
            self.offset += len(page)
            if len(page) < PAGE:
                break
        if found:
            self.outbox.wake()
        return found
