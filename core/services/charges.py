"""What becomes of one charge, inside its transaction: the one idempotent confirmation.

A charge is recorded once per ``(provider, charge id)`` (UNIQUE; a replay reports the first outcome and
changes nothing), then either delivers the order it pays for or is owed back to whoever paid it: money
the shop cannot keep (an unknown order, a wrong amount, a payer who does not own the order, a late payment
the purchase rules refuse, a second charge, a charge that cannot be confirmed at all) is recorded and its
refund queued in the same transaction. Every channel's payment, the notices' retries and an admin's
"mark paid" end here. These functions run on a database thread; ``PaymentService`` owns the transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from core.context import ShopConfig
from core.errors import InvalidInput
from core.events import PaymentRejected, RefundOwed
from core.models import (
    ALREADY_PAID,
    AMOUNT_MISMATCH,
    NOT_OWNER,
    UNKNOWN_ORDER,
    Charge,
    Order,
    OrderStatus,
    PaymentResult,
    PaymentStatus,
    Product,
)
from core.repositories import Repositories
from core.services.checkout import refusal_late, refusal_on_time
from core.services.fulfilment import fulfil, transition
from core.uow import UnitOfWork

log = logging.getLogger(__name__)


class LostRace(Exception):
    """A twin of this charge committed between our check and our insert: start again (it is a replay)."""


def check_charge(provider: str, charge_id: str) -> None:
    if not provider or not charge_id or len(charge_id) > 128 or len(provider) > 16:
        raise InvalidInput("provider and charge id are required", field="charge_id")


def confirm(uow: UnitOfWork, config: ShopConfig, now: datetime, c: Charge) -> PaymentResult:
    """Record a charge and deliver the order it pays for, or owe it back to its payer. A replay of a
    recorded charge returns its first outcome and changes nothing."""
    r = uow.repo
    found = r.orders.with_product(c.order_ref[:128])  # the order locked: order → payments
    order, product = found if found else (None, None)
    seen = r.payments.get(c.provider, c.charge_id)
    if seen is not None:  # a replay: report the first outcome, change nothing
        prior = r.orders.get(seen.order_id) if seen.order_id is not None else None
        return PaymentResult(PaymentStatus(seen.status), prior, replay=True, reason=seen.reason)
    if c.payer_id is None and order is not None:
        c = dataclasses.replace(c, payer_id=order.user_id)  # no payer given: the owner paid
    rejection = _mismatch(c, order)
    if rejection is not None:
        return _reject(uow, c, order, rejection, now)
    assert order is not None and product is not None
    status, reason = _judge(uow, config, order, product, now)
    _record(r, c, order, status, reason, now)  # a lost race rolls back the re-reservation too
    r.audit.add(
        now,
        _actor(c),
        "payment_confirmed" if status is PaymentStatus.ACCEPTED else "payment_refund_due",
        product_id=order.product_id,
        order_id=order.id,
        charge_id=c.charge_id,
        amount=c.amount,
        currency=c.currency,
        reason=reason,
    )
    if status is PaymentStatus.ACCEPTED:
        updated = fulfil(uow, order, product, now, _actor(c))
    else:
        updated = _give_back(uow, c, order, reason, now)
    return PaymentResult(status, updated, replay=False, reason=reason)


def owe_unconfirmable(uow: UnitOfWork, now: datetime, charge: Charge, reason: str) -> PaymentResult:
    """A charge that cannot be confirmed (a garbage payload, processing that keeps failing): recorded as
    ``refund_due`` with its refund queued to the payer. A charge already recorded is left as it is."""
    r = uow.repo
    seen = r.payments.get(charge.provider, charge.charge_id)
    if seen is not None:
        return PaymentResult(PaymentStatus(seen.status), None, replay=True, reason=seen.reason)
    _record(r, charge, None, PaymentStatus.REFUND_DUE, reason[:64], now)
    r.audit.add(
        now,
        _actor(charge),
        "payment_refund_due",
        charge_id=charge.charge_id,
        amount=charge.amount,
        currency=charge.currency[:8],
        payer_id=charge.payer_id,
        reason=reason[:64],
    )
    uow.emit(RefundOwed(at=now, actor=_actor(charge), charge=charge, reason=reason))
    return PaymentResult(PaymentStatus.REFUND_DUE, None, replay=False, reason=reason)


def _actor(c: Charge) -> str:
    return f"payment:{c.provider}"


def _mismatch(c: Charge, order: Order | None) -> str | None:
    """Why a charge pays for nothing the shop sells, or None."""
    if order is None:
        return UNKNOWN_ORDER
    if c.payer_id != order.user_id:
        return NOT_OWNER  # a forwarded invoice paid by someone else: never delivered to anybody
    if c.amount != order.amount or c.currency != order.currency:
        return AMOUNT_MISMATCH
    return None


def _record(
    r: Repositories, c: Charge, order: Order | None, status: PaymentStatus, reason: str | None, now: datetime
) -> None:
    """The payment row, once per (provider, charge id); a twin that committed first is a lost race."""
    inserted = r.payments.add_once(
        provider=c.provider,
        charge_id=c.charge_id,
        order_id=order.id if order else None,
        order_ref=c.order_ref[:128],
        payer_id=c.payer_id,
        amount=c.amount,
        currency=c.currency[:8],
        status=status,
        reason=reason,
        created_at=now,
        earns_commission=c.earns_commission,
    )
    if not inserted:
        raise LostRace()


def _judge(
    uow: UnitOfWork, config: ShopConfig, order: Order, product: Product, now: datetime
) -> tuple[PaymentStatus, str | None]:
    """May the shop keep this payment for ``order``? ``(ACCEPTED, None)`` or ``(REFUND_DUE, why)``."""
    if order.status is OrderStatus.PENDING:
        reason = refusal_on_time(uow.repo, order, product)
    elif order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
        reason = refusal_late(uow, config, order, product, now)  # takes stock again
    else:  # already paid (or being refunded): a second charge is given back
        reason = ALREADY_PAID
    return (PaymentStatus.ACCEPTED, None) if reason is None else (PaymentStatus.REFUND_DUE, reason)


def _reject(uow: UnitOfWork, c: Charge, order: Order | None, reason: str, now: datetime) -> PaymentResult:
    """A charge that pays for nothing: recorded, nothing delivered, the money owed back to the payer."""
    _record(uow.repo, c, order, PaymentStatus.REJECTED, reason, now)
    uow.repo.audit.add(
        now,
        _actor(c),
        "payment_rejected",
        order_id=order.id if order else None,
        charge_id=c.charge_id,
        amount=c.amount,
        currency=c.currency[:8],
        payer_id=c.payer_id,
        reason=reason,
    )
    uow.emit(PaymentRejected(at=now, actor=_actor(c), charge=c, order=order, reason=reason))
    log.warning("payment %s/%s rejected: %s", c.provider, c.charge_id, reason)
    return PaymentResult(PaymentStatus.REJECTED, order, replay=False, reason=reason)


def _give_back(uow: UnitOfWork, c: Charge, order: Order, reason: str | None, now: datetime) -> Order:
    """A payment the purchase rules refuse, or a second charge: the money is owed back. A refused
    payment's order gives its stock back and waits for the refund; a paid order stays as it is."""
    updated = order
    if reason != ALREADY_PAID:
        if order.status is OrderStatus.PENDING:
            uow.repo.keys.release_for_orders([order.id])  # reserved for it: back to stock
            uow.stock_moved = True
        updated = transition(uow.repo, order, OrderStatus.REFUND_DUE)
    owed = dataclasses.replace(c, order_ref=order.ref)
    uow.emit(RefundOwed(at=now, actor=_actor(c), charge=owed, reason=reason))
    return updated
