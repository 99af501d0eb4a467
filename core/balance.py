"""The shop balance, inside other services' transactions: a user's available commission (their
``available`` ledger account in a currency) spent on their own order, and given back when that order is
refunded.

Spending is a payment like any other: a charge of the ``balance`` provider, one per order
(``balance:<order ref>``, so a replay is recognised), confirmed through the one confirmation
(``core.services.charges.confirm``), with the posting that moves the amount from ``available`` to ``spent``
in the same transaction. The balance is read with its account locked (``LedgerRepo.locked_balance``), so
two payments never spend the same money and it never goes below zero by spending.

A balance payment owed back (an admin's refund) is neither paid back by a channel nor by hand: it returns
to the balance at once, in the transaction that owes it (``return_payment``, a reaction to
``RefundOwed``): ``spent`` back to ``available``, the payment ``refunded``, and the order ``refunded`` when
nothing else is owed. Money moved so stays settled commission, as ``core.ledger.check`` counts it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from core.errors import InsufficientBalance, IntegrityViolation
from core.events import OrderRefunded, RefundOwed
from core.ledger import Leg, post
from core.models import AccountKind, Charge, Order, OrderStatus, Payment, PaymentStatus, check_transition

if TYPE_CHECKING:
    from core.uow import UnitOfWork

BALANCE = "balance"  # the provider of a payment from the shop balance
_OWED = (PaymentStatus.REFUND_DUE, PaymentStatus.REJECTED)


def balance_charge(order: Order) -> Charge:
    """The one charge that pays ``order`` from its buyer's balance: its whole amount, in its currency."""
    return Charge(BALANCE, f"{BALANCE}:{order.ref}", order.ref, order.amount, order.currency, order.user_id)


def spend(uow: UnitOfWork, order: Order, at: datetime, actor: str) -> None:
    """Move the order's amount from its buyer's available balance to spent, refused with
    ``InsufficientBalance`` (nothing written) unless the balance, read under its account's lock, covers
    it. Once per order (the posting's key)."""
    r = uow.repo.ledger
    have = r.locked_balance(order.user_id, AccountKind.AVAILABLE, order.currency, at)
    if have < order.amount:
        raise InsufficientBalance(ref=order.ref)
    legs: list[Leg] = [
        (order.user_id, AccountKind.AVAILABLE, -order.amount, order.currency),
        (order.user_id, AccountKind.SPENT, order.amount, order.currency),
    ]
    key = f"balance-payment:{order.id}"
    if not post(uow, key, "balance_payment", legs, at, order_id=order.id, actor=actor):
        raise IntegrityViolation(f"order {order.id} was paid from the balance before")


def return_payment(uow: UnitOfWork, e: RefundOwed) -> Payment | None:
    """A balance charge owed back goes back to its payer's balance now: the payment becomes ``refunded``
    (guarded by its status, so once), ``spent`` moves back to ``available``, and the order, when it waits
    for its refunds and nothing else is owed, becomes ``refunded``. Returns the payment returned now; None
    for another provider's charge or one already returned."""
    if e.charge.provider != BALANCE:
        return None
    r = uow.repo
    pay = r.payments.get(BALANCE, e.charge.charge_id)
    if pay is None or pay.payer_id is None:
        raise IntegrityViolation(f"balance charge {e.charge.charge_id} is owed back but not recorded")
    if r.payments.set_status(pay.id, _OWED, PaymentStatus.REFUNDED, refunded_at=e.at) != 1:
        return None  # returned before (it is no longer owed)
    legs: list[Leg] = [
        (pay.payer_id, AccountKind.SPENT, -pay.amount, pay.currency),
        (pay.payer_id, AccountKind.AVAILABLE, pay.amount, pay.currency),
    ]
    post(uow, f"balance-return:{pay.id}", "balance_return", legs, e.at, order_id=pay.order_id, actor=e.actor)
    r.audit.add(
        e.at,
        e.actor,
        "payment_returned_to_balance",
        order_id=pay.order_id,
        charge_id=pay.charge_id,
        amount=pay.amount,
        currency=pay.currency,
        reason=e.reason,
    )
    order = r.orders.get(pay.order_id, lock=True) if pay.order_id is not None else None
    if order is not None and order.status is OrderStatus.REFUND_DUE:
        owed = any(p.status == PaymentStatus.REFUND_DUE for p in r.payments.for_order(order.id))
        if not owed:
            check_transition(order.status, OrderStatus.REFUNDED)
            done = r.orders.set_status(order.id, order.status, OrderStatus.REFUNDED)
            if done is None:
                raise IntegrityViolation(f"order {order.id} left {order.status} under us")
            uow.emit(OrderRefunded(at=e.at, actor=e.actor, order=done))
    return pay
