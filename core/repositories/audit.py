"""The audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from core import tables as t
from core.sql import Prebuilt, run_many


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit row as the audit screens show it: with its order's reference and its product's name."""

    id: int
    at: datetime
    actor: str
    action: str
    order_ref: str | None
    product_id: int | None
    product_name: str | None
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

    def recent(
        self, *, order_id: int | None = None, actor: str | None = None, offset: int = 0, limit: int = 10
    ) -> list[AuditRecord]:
        """Audit rows newest first (``order_id`` / ``actor``: only those), ``limit`` from ``offset``."""
        self.flush()
        a, o, p = t.audit_log, t.orders, t.products
        product_id = func.coalesce(a.c.product_id, o.c.product_id)  # an order's row names its product
        q = (
            select(a.c.id, a.c.at, a.c.actor, a.c.action, o.c.ref, product_id, p.c.name, a.c.detail)
            .select_from(a.outerjoin(o, o.c.id == a.c.order_id).outerjoin(p, p.c.id == product_id))
            .order_by(a.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        if order_id is not None:
            q = q.where(a.c.order_id == order_id)
        if actor is not None:
            q = q.where(a.c.actor == actor)
        return [AuditRecord(*r) for r in self.conn.execute(q)]
