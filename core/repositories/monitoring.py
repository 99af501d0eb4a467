"""Figures read for monitoring at every scrape, so each is one cheap statement on an index: orders by
status (``ix_orders_status_expires``), the outbox's backlog (``ix_outbox_status_next``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from core import tables as t


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    pending: int  # waiting to be sent, due or not
    oldest_due_at: datetime | None  # when the longest-waiting due message became due; None: none is due


class MonitoringRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def orders_by_status(self) -> dict[str, int]:
        o = t.orders
        q = select(o.c.status, func.count()).group_by(o.c.status)
        return {status: int(n) for status, n in self.conn.execute(q)}

    def outbox_backlog(self, now: datetime) -> OutboxBacklog:
        o = t.outbox
        pending = self.conn.execute(select(func.count()).where(o.c.status == "pending")).scalar_one()
        oldest = self.conn.execute(
            select(func.min(o.c.next_attempt_at)).where(o.c.status == "pending", o.c.next_attempt_at <= now)
        ).scalar_one()
        return OutboxBacklog(int(pending), oldest)
