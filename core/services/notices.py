"""Payment notices as a channel delivered them: recorded durably before anything else, processed, and
retried with backoff until they are (the transactions on the database thread, and what processing one
came to). ``PaymentService`` drives them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.errors import IntegrityViolation
from core.models import Charge, PaymentResult
from core.uow import UnitOfWork

NOTICE_ALERT_AFTER = 3  # failed attempts after which admins hear about a notice (retrying goes on)


def notice_backoff(attempts: int) -> timedelta:
    """15 s after the first failure, doubling, at most 5 minutes apart."""
    return timedelta(seconds=min(300, 15 * 2 ** min(max(attempts - 1, 0), 5)))


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    """How processing one payment notice went."""

    notice_id: int
    charge_id: str
    order_ref: str
    result: PaymentResult | None  # None: it failed and stays pending
    attempts: int = 0  # failed attempts so far
    error: str | None = None
    transient: bool = False  # the failure was a database hiccup (locked, connection lost)

    @property
    def ok(self) -> bool:
        return self.result is not None


def insert_notice(uow: UnitOfWork, charge: Charge, raw: dict[str, Any], now: datetime) -> tuple[int, bool]:
    """The notice of ``charge``, inserted unless its (provider, charge_id) is known: its id, and whether it
    was inserted now. Not committed."""
    notices = uow.repo.notices
    nid = notices.add_once(
        provider=charge.provider,
        charge_id=charge.charge_id,
        payer_id=charge.payer_id,
        order_ref=charge.order_ref[:128],
        amount=charge.amount,
        currency=charge.currency[:8],
        raw=raw,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        received_at=now,
    )
    if nid is not None:
        return nid, True
    known = notices.id_of(charge.provider, charge.charge_id)
    if known is None:
        raise IntegrityViolation(f"payment notice {charge.provider}/{charge.charge_id} vanished")
    return known, False


def add_notice(uow: UnitOfWork, charge: Charge, raw: dict[str, Any], now: datetime) -> int:
    nid, _ = insert_notice(uow, charge, raw, now)
    uow.commit()
    return nid


def reschedule_notice(uow: UnitOfWork, notice_id: int, now: datetime, error: str) -> int:
    n = uow.repo.notices.get(notice_id, lock=True)
    if n is None or n.status != "pending":
        return 0
    attempts = uow.repo.notices.reschedule(notice_id, now + notice_backoff(n.attempts + 1), error)
    uow.commit()
    return attempts


def due_notices(uow: UnitOfWork, now: datetime, limit: int) -> list[int]:
    return uow.repo.notices.due(now, limit)
