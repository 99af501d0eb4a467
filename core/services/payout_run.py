"""The payout run (``PAYOUT_SCHEDULE``, weekly by default): distributors who could withdraw are told how,
and the admins who pay are told what waits.

The rules:

- A distributor hears about each currency of their available balance that ``/withdraw`` would let them
  withdraw now (``core.services.payouts.withdraw_block``: it pays at least ``PAYOUT_MINIMUM``; Stars only
  with a ``STARS_PAYOUT_RATE``) and in which they have no open request. Not a distributor who blocked the
  bot. One message per currency, with the amount; the channel adds the way to ask (/withdraw).
- The owners and the staff holding ``Power.MONEY`` hear about the open requests (how many, what they pay
  per currency, the oldest), when there are any. That message reads the queue when it is sent.
- **Once per slot.** A slot is one scheduled time of ``PAYOUT_SCHEDULE`` (the scheduler names it). The run
  claims ``job_claims('payout_run', slot)`` in the transaction that writes its messages: a second
  scheduler, a restart or ``keyshop jobs run`` for the same slot writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from core.admins import admin_recipients
from core.context import Context, ShopConfig, UnitOfWork
from core.errors import InvalidInput
from core.messages import PayoutQueueDue, PayoutReady
from core.models import Payout, payout_value
from core.reactions import write_message
from core.repositories.payouts import OpenTotal
from core.roles import Power
from core.services.payouts import withdraw_block

log = logging.getLogger(__name__)

PAYOUT_RUN = "payout_run"  # its job_claims name
MAX_PERIOD = 64  # job_claims.period


@dataclass(frozen=True, slots=True)
class PayoutRunResult:
    ran: bool  # False: this slot had run before (nothing written)
    distributors: int  # messages to distributors
    admins: int  # messages to admins about the queue

    @property
    def messages(self) -> int:
        return self.distributors + self.admins


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """The open withdrawal requests, as the admins are told of them."""

    requests: int
    to_pay: tuple[OpenTotal, ...]  # per currency paid in
    oldest: Payout | None


class PayoutRunService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self, slot: str) -> PayoutRunResult:
        """The payout run of ``slot`` (a scheduled time, as the scheduler names it), unless it ran."""
        if not 1 <= len(slot) <= MAX_PERIOD:
            raise InvalidInput(f"a slot is named in 1 to {MAX_PERIOD} characters", field="slot")
        cfg = self.ctx.config
        done = await self.ctx.write(_run, slot, cfg, self.ctx.clock.now())
        if done.ran:
            log.info(
                "payout run %s: %d distributors and %d admins told", slot, done.distributors, done.admins
            )
        return done

    async def queue(self) -> QueueSummary:
        """The open requests now: how many, what they pay per currency, the oldest."""
        return await self.ctx.read(_queue)


def _queue(uow: UnitOfWork) -> QueueSummary:
    r = uow.repo.payouts
    totals = tuple(r.open_totals())
    oldest = r.queue(0, 1)
    return QueueSummary(sum(x.requests for x in totals), totals, oldest[0].payout if oldest else None)


def _run(uow: UnitOfWork, slot: str, cfg: ShopConfig, now: datetime) -> PayoutRunResult:
    r = uow.repo
    # The claim first: a second run of this slot waits here for the first to commit, then finds it taken.
    if not r.claims.claim(PAYOUT_RUN, slot, now):
        return PayoutRunResult(False, 0, 0)
    told = 0
    for b in r.payouts.unrequested_balances():
        if b.owner_id is None or withdraw_block(b.amount, b.currency, None, cfg) is not None:
            continue
        value = payout_value(b.amount, b.currency, cfg.currency, cfg.stars_payout_rate)
        assert value is not None  # withdrawable: it pays something
        write_message(uow, b.owner_id, PayoutReady(b.currency, b.amount, value, cfg.currency), now)
        told += 1
    admins = 0
    if r.payouts.count_open():
        for to in admin_recipients(uow, cfg.owner_ids, Power.MONEY, now):
            write_message(uow, to.user_id, PayoutQueueDue(slot), now)
            admins += 1
    uow.commit()
    return PayoutRunResult(True, told, admins)
