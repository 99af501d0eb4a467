"""Low-stock and out-of-stock alerts to the admins who handle stock, once per crossing.

The rules, as an admin reads them:

- Only active products whose keys are unique are watched (a shared key or a manual product has no stock to
  run out of); "available" is keys ready to sell, not those held by unpaid orders.
- A product is **low** when 0 < available ≤ its ``low_stock_threshold``, **out** when none is available.
  A threshold of 0 means the product is only ever out.
- Going low alerts once; running out alerts once more (or once only, when it went from above the threshold
  to none between two looks). Nothing more is said while it stays there.
- Restocked above the threshold, the product is **re-armed**: its next crossing alerts again. Restocked a
  little but not above the threshold (out to low), nothing is said, and running out again alerts again.
- The alert goes to the owners and to the staff holding ``Power.STOCK`` whose scope covers the product (an
  operator hears about their products only), each in their own outbox row.

``stock_alerts`` keeps the level last alerted per product. Every change of it is guarded by the level the
transaction saw (insert-once, UPDATE/DELETE where the level is still that) and an alert is written only
with a change that went through, in the same transaction: two schedulers looking at once alert once.

A check runs every minute, so it first compares in a read-only transaction (on SQLite never waiting for
the writer) and takes a write transaction only when some product's level changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from core.admins import admin_recipients
from core.context import Context, UnitOfWork
from core.messages import STOCK_LOW, STOCK_OUT, StockAlert
from core.models import DeliveryKind, Product
from core.reactions import write_message
from core.roles import Power

log = logging.getLogger(__name__)


def stock_level(available: int, threshold: int) -> str | None:
    """``out`` with none available, ``low`` at or under the threshold, None above it."""
    if available <= 0:
        return STOCK_OUT
    if available <= threshold:
        return STOCK_LOW
    return None


@dataclass(frozen=True, slots=True)
class Watched:
    """One watched product now, and the level last alerted for it."""

    product: Product
    available: int
    alerted: str | None

    @property
    def level(self) -> str | None:
        return stock_level(self.available, self.product.low_stock_threshold)

    @property
    def changed(self) -> bool:
        return self.level != self.alerted


class StockAlertService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def check(self) -> int:
        """Alert every product that crossed a level since the last check, re-arm those restocked. Returns
        the alerts written (one per admin and product)."""
        if not any(w.changed for w in await self.ctx.read(_watched)):
            return 0
        return await self.ctx.write(_check, self.ctx.config.owner_ids, self.ctx.clock.now())


def _watched(uow: UnitOfWork) -> list[Watched]:
    r = uow.repo
    products = [p for p in r.catalog.products(active_only=True) if p.delivery_kind is DeliveryKind.UNIQUE]
    available = r.keys.available_by_product()
    alerted = r.stock_alerts.levels()
    return [Watched(p, available.get(p.id, 0), alerted.get(p.id)) for p in products]


def _check(uow: UnitOfWork, owners: tuple[str, ...], now: datetime) -> int:
    r = uow.repo
    alerts: list[Watched] = []
    for w in _watched(uow):
        if not w.changed:
            continue
        pid, level, alerted = w.product.id, w.level, w.alerted
        if level is None:
            assert alerted is not None
            r.stock_alerts.clear(pid, alerted)  # re-armed; another scheduler may have done it first
        elif alerted is None:
            if r.stock_alerts.insert(pid, level, now):
                alerts.append(w)
        elif level == STOCK_OUT:  # it was low and ran out
            if r.stock_alerts.move(pid, alerted, level, now):
                alerts.append(w)
        else:  # it was out, a few came back (not above the threshold): quietly low, so out alerts again
            r.stock_alerts.move(pid, alerted, level, now)
    written = 0
    if alerts:
        recipients = admin_recipients(uow, owners, Power.STOCK, now)
        for w in alerts:
            p = w.product
            message = StockAlert(p.id, w.level or STOCK_OUT, w.available, p.low_stock_threshold)
            told = [to for to in recipients if to.grant.covers(p.id, p.category_id)]
            for to in told:
                write_message(uow, to.user_id, message, now)
            written += len(told)
            log.info("product %s is %s (%d available): %d admins told", p.id, w.level, w.available, len(told))
    uow.commit()
    return written
