"""The ledger's use cases: settling commissions whose holding period ended, reading balances, checking
that the ledger and every order's commissions keep their rules. Each public method is one transaction
(settlement: one per batch)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from core.context import Context, UnitOfWork
from core.db import Database
from core.ledger import Drift, settle_due
from core.ledger_check import Progress, check_all
from core.models import Balance, Commission

SETTLE_BATCH = 500  # commissions per settlement transaction (short write locks on SQLite)


class LedgerService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def settle(self, now: datetime | None = None) -> int:
        """Move every pending commission due by ``now`` (the clock's if not given) to available; returns
        how many this call settled. Idempotent and safe to run concurrently: each commission is claimed by
        a status-guarded UPDATE, so two settlements never move one commission twice."""
        at = now if now is not None else self.ctx.clock.now()
        total = 0
        while True:
            n = len(await self.ctx.write(self._settle, at, SETTLE_BATCH))
            total += n
            if n < SETTLE_BATCH:
                return total

    @staticmethod
    def _settle(uow: UnitOfWork, now: datetime, limit: int) -> list[Commission]:
        settled = settle_due(uow, now, limit)
        uow.commit()
        return settled

    async def balances(self, owner_id: int | None) -> list[Balance]:
        """The accounts of a distributor (or, with None, the shop's), each with the sum of its entries."""
        return await self.ctx.read(lambda uow: uow.repo.ledger.balances([owner_id]))

    async def commissions(self, order_id: int) -> list[Commission]:
        return await self.ctx.read(lambda uow: uow.repo.ledger.commissions_for_order(order_id))

    async def check(self, progress: Progress | None = None) -> list[Drift]:
        """What breaks the ledger's rules or the commission rules (``core.ledger_check.check_all``), one
        line each; empty when clean."""
        return await self.ctx.read(check_all, self.ctx.config.commission_rates, progress)


async def check_database(
    db: Database, rates_bp: tuple[int, ...], progress: Progress | None = None
) -> list[Drift]:
    """``LedgerService.check`` on a database alone (``rates_bp``: COMMISSION_RATES): it reads no card key,
    so it needs no vault, and it never migrates (``keyshop ledger check`` reads any copy as it is)."""
    return await db.read(_check_connection, rates_bp, progress)


def _check_connection(conn: Connection, rates_bp: tuple[int, ...], progress: Progress | None) -> list[Drift]:
    return check_all(UnitOfWork(conn, write=False), rates_bp, progress)
