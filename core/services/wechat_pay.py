"""The shop's record of orders opened at WeChat Pay, for the reconciliation that does not trust notifies
alone (WeChat Pay retries one for about 24 h and does not guarantee it).

The pay page records an order when it asks WeChat Pay for a prepay (``opened``). The reconciliation job
takes the open ones in turns (``due``: each is taken by one scheduler per round) and asks WeChat Pay about
each; what it learns is confirmed through the same payment notices as a notify, and the row is settled
``paid``, or ``closed`` once the order's reservation is over and WeChat Pay closed it. Talking to WeChat
Pay is the channel's (``handlers.wechat``); this service only keeps the record."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.context import Context
from core.errors import InvalidInput
from core.repositories.wechat_pay import CLOSED, OPEN, PAID, OpenPayOrder
from core.uow import UnitOfWork

TRADE_TYPES = ("JSAPI", "NATIVE")
SETTLED = (PAID, CLOSED)
# A prepay is given this long to be paid and notified before the reconciliation first asks about it.
FIRST_CHECK_AFTER = timedelta(minutes=1)
CHECK_EVERY = timedelta(minutes=2)  # how often an open order is asked about again

__all__ = ["CLOSED", "OPEN", "PAID", "OpenPayOrder", "WechatPayOrderService"]


class WechatPayOrderService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def opened(self, order_ref: str, trade_type: str) -> str:
        """Record ``order_ref`` as opened at WeChat Pay; returns the trade type it was opened as first."""
        if trade_type not in TRADE_TYPES:
            raise InvalidInput("unknown WeChat Pay trade type", field="trade_type")
        return await self.ctx.write(_open, order_ref[:32], trade_type, self.ctx.clock.now())

    async def trade_type(self, order_ref: str) -> str | None:
        """``JSAPI`` or ``NATIVE``: how the order was first opened at WeChat Pay (the only way it can be
        paid there); None for an order never opened."""
        return await self.ctx.read(lambda uow: uow.repo.wechat_pay.trade_type(order_ref[:32]))

    async def state(self, order_ref: str) -> str | None:
        """``open``, ``paid``, ``closed``, or None for an order never opened at WeChat Pay."""
        return await self.ctx.read(lambda uow: uow.repo.wechat_pay.state(order_ref[:32]))

    async def due(self, *, limit: int = 100) -> list[OpenPayOrder]:
        """Take up to ``limit`` open orders to ask WeChat Pay about: opened at least ``FIRST_CHECK_AFTER``
        ago and not asked about for ``CHECK_EVERY`` (by this scheduler or another)."""
        return await self.ctx.write(_due, self.ctx.clock.now(), limit)

    async def settle(self, order_ref: str, state: str) -> bool:
        """WeChat Pay says the order was paid, or closed it: it is no longer asked about. False when it
        was settled already."""
        if state not in SETTLED:
            raise InvalidInput("a WeChat Pay order settles as paid or closed", field="state")
        return await self.ctx.write(_settle, order_ref[:32], state, self.ctx.clock.now())


def _open(uow: UnitOfWork, order_ref: str, trade_type: str, now: datetime) -> str:
    first = uow.repo.wechat_pay.open(order_ref, trade_type, now)
    uow.commit()
    return first


def _due(uow: UnitOfWork, now: datetime, limit: int) -> list[OpenPayOrder]:
    r = uow.repo.wechat_pay
    checked_before = now - CHECK_EVERY
    taken = [
        row
        for row in r.due(now - FIRST_CHECK_AFTER, checked_before, limit)
        if r.take(row.order_ref, checked_before, now)
    ]
    uow.commit()
    return taken


def _settle(uow: UnitOfWork, order_ref: str, state: str, now: datetime) -> bool:
    done = uow.repo.wechat_pay.settle(order_ref, state, now)
    uow.commit()
    return done
