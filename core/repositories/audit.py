"""The audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from core import tables as t
from core.sql import Prebuilt, run_many


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    detail: dict[str, Any]


class AuditRepo:
    """Audit rows are collected and written together (one round trip) before the unit of work commits;
    a rollback discards them with everything else."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect
        self._pending: list[dict[str, Any]] = []

    def add(
        self,
        at: datetime,
        actor: str,
        action: str,
        *,
        product_id: int | None = None,
        order_id: int | None = None,
        **detail: Any,
    ) -> None:
        self._pending.append(
            {
                "at": at,
                "actor": actor,
                "action": action,
                "product_id": product_id,
                "order_id": order_id,
                "detail": detail,
            }
        )

    _Q_AUDIT_INSERT = Prebuilt(insert(t.audit_log))

    def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            run_many(self.conn, self._Q_AUDIT_INSERT, rows)

    def for_order(self, order_id: int) -> list[AuditEntry]:
        """What was recorded about an order, oldest first (including rows not yet flushed)."""
        self.flush()
        a = t.audit_log
        q = select(a.c.action, a.c.detail).where(a.c.order_id == order_id).order_by(a.c.id)
        return [AuditEntry(r[0], r[1]) for r in (self.conn.execute(q)).all()]
