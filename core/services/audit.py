"""The audit trail, read back: who did what, when, on which order or product, newest first.

Audit rows never hold a key (the services record key ids, never key values), so what this returns can be
shown to an owner as it is."""

from __future__ import annotations

from dataclasses import dataclass

from core.context import Context, UnitOfWork
from core.errors import InvalidInput, OrderNotFound
from core.repositories.audit import AuditRecord

MAX_PAGE_SIZE = 1000
ACTOR_MAX = 64  # audit_log.actor


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditRecord]
    offset: int
    has_more: bool  # older entries follow


class AuditService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def recent(
        self, *, order_ref: str | None = None, actor: str | None = None, offset: int = 0, limit: int = 10
    ) -> AuditPage:
        """``limit`` entries from ``offset``, newest first; only those of the order ``order_ref`` (unknown:
        ``OrderNotFound``) and of ``actor`` (exactly, e.g. ``telegram:42``, ``cli``, ``system``) when
        given."""
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise InvalidInput(f"from 1 to {MAX_PAGE_SIZE} entries at a time", field="limit")
        if actor is not None and not 1 <= len(actor) <= ACTOR_MAX:
            raise InvalidInput("not an actor", field="actor")
        return await self.ctx.read(_recent, order_ref, actor, offset, limit)


def _recent(uow: UnitOfWork, order_ref: str | None, actor: str | None, offset: int, limit: int) -> AuditPage:
    order_id = None
    if order_ref is not None:
        order = uow.repo.orders.by_ref(order_ref[:128])
        if order is None:
            raise OrderNotFound(ref=order_ref)
        order_id = order.id
    rows = uow.repo.audit.recent(order_id=order_id, actor=actor, offset=offset, limit=limit + 1)
    return AuditPage(rows[:limit], offset, len(rows) > limit)
