"""The daily summary: every day at ``SUMMARY_TIME`` in ``SHOP_TIMEZONE``, the owners and the staff holding
``Power.REPORTS`` get yesterday's figures (``ReportService.day_summary``: revenue per currency, orders,
refunds, new buyers; manual orders waiting and products low or out of stock as they are when it is sent)
with the sales chart.

- **Yesterday in the shop's time zone**: at 09:00 in Asia/Shanghai it is the Shanghai day that just ended,
  whatever the server's clock says.
- **Once per date.** Sending claims ``job_claims('daily_summary', 'YYYY-MM-DD')`` in the transaction that
  writes the messages: a second scheduler, a restart or ``keyshop jobs run`` the same day writes nothing.
- **Catch-up, once.** A summary is due from ``SUMMARY_TIME`` on the next day: a shop started after that
  hour sends yesterday's if it was not sent; one started before sends it at ``SUMMARY_TIME``. A summary not
  sent by the end of its due day is not sent late (the next one covers the shop's "now").
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.admins import admin_recipients
from core.context import Context, UnitOfWork
from core.messages import DailySummary
from core.reactions import write_message
from core.roles import Power

log = logging.getLogger(__name__)

DAILY_SUMMARY = "daily_summary"  # its job_claims name


def summary_due(now: datetime, tz: ZoneInfo, at: time) -> date | None:
    """The day whose summary is due at ``now``: yesterday in ``tz`` once today's ``at`` has come, else
    None (yesterday's comes due at ``at``; the one before was due yesterday)."""
    local = now.astimezone(tz)
    if local.time() < at:
        return None
    return local.date() - timedelta(days=1)


class DailySummaryService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def send_due(self, at: time) -> int:
        """Send the summary due now (``at``: ``SUMMARY_TIME``), unless it was sent. Returns the messages
        written (0: none due, or sent before)."""
        day = summary_due(self.ctx.clock.now(), self.ctx.config.timezone, at)
        return 0 if day is None else await self.send(day)

    async def send(self, day: date) -> int:
        """Send the summary of ``day`` to every owner and admin with the reports power, unless it was
        sent. Returns the messages written (0: sent before)."""
        cfg = self.ctx.config
        written = await self.ctx.write(_send, day.isoformat(), cfg.owner_ids, self.ctx.clock.now())
        if written is not None:
            log.info("daily summary of %s written for %d admins", day, written)
        return written or 0


def _send(uow: UnitOfWork, day: str, owners: tuple[str, ...], now: datetime) -> int | None:
    """The messages written, or None when the day was claimed before."""
    if not uow.repo.claims.claim(DAILY_SUMMARY, day, now):
        return None
    recipients = admin_recipients(uow, owners, Power.REPORTS, now)
    for to in recipients:
        write_message(uow, to.user_id, DailySummary(day), now)
    uow.commit()
    return len(recipients)
