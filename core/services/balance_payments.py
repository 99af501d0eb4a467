"""Paying an order from the shop balance (the buyer's available commission, ``core.balance``): the quote a
channel shows before the buyer confirms, and the payment.

The payment is one transaction: the order locked and checked (the buyer's own, pending, unexpired, buyer
and product still allowed, as at pre-checkout), the balance spent under its account's lock, and the charge
of the ``balance`` provider (``balance:<order ref>``) confirmed through the one confirmation every provider
goes through (``core.services.charges.confirm``): the order is delivered exactly as a Stars payment
delivers it, its messages through the outbox. A second tap finds the charge recorded and gets the first
outcome, spending nothing. Any refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.balance import BALANCE, balance_charge, spend
from core.context import Context
from core.errors import (
    InsufficientBalance,
    IntegrityViolation,
    InvalidOrderState,
    NotOrderOwner,
    OrderNotFound,
    ReservationExpired,
)
from core.models import AccountKind, Order, OrderStatus, PaymentResult, PaymentStatus, Product, User
from core.services.charges import LostRace, confirm
from core.services.checkout import check_buyer_and_product
from core.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class BalanceQuote:
    """What paying an order from the balance would be: the order, the buyer's available balance in its
    currency, and whether the balance paid it already (a second tap: paying again changes nothing)."""

    order: Order
    available: int
    paid: bool


class BalancePaymentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def available(self, user_id: int, currency: str) -> int:
        """The user's available balance in ``currency`` (0 without one); may be negative after a clawback."""
        return await self.ctx.read(_available, user_id, currency)

    async def quote(self, order_ref: str, user_id: int) -> BalanceQuote:
        """Whether ``user_id`` may pay ``order_ref`` from their balance now (a read; nothing locked), for a
        channel to offer it or ask for confirmation. Raises the refusal ``pay`` would raise: someone else's
        or an unknown order, not pending, expired, buyer or product refused, balance short."""
        found = await self.ctx.read(_quote, order_ref[:128])
        if found is None:
            raise OrderNotFound(ref=order_ref[:32])
        order, buyer, product, available, paid = found
        if order.user_id != user_id:
            raise NotOrderOwner(ref=order.ref)
        if not paid:
            _check_payable(order, buyer, product, self.ctx.clock.now())
            if available < order.amount:
                raise InsufficientBalance(ref=order.ref)
        return BalanceQuote(order, available, paid)

    async def pay(self, order_ref: str, user_id: int) -> PaymentResult:
        """Pay ``order_ref`` from ``user_id``'s balance in its currency, in one transaction: the spending
        posting and the confirmation of charge ``balance:<order ref>`` (delivery, commissions, the buyer's
        message) commit together. A replay (a double tap) returns the first outcome with ``replay`` set and
        spends nothing. Refused, changing nothing: ``OrderNotFound``, ``NotOrderOwner``,
        ``InvalidOrderState`` (paid otherwise, cancelled...), ``ReservationExpired``, ``UserBlocklisted``,
        ``ProductUnavailable``, ``InsufficientBalance``."""
        for attempt in (1, 2):
            try:
                return await self.ctx.write(self._pay, order_ref[:128], user_id)
            except LostRace:  # a twin recorded the charge first: the next attempt is a replay
                if attempt == 2:
                    raise IntegrityViolation("a balance payment kept changing under us") from None
        raise AssertionError("unreachable")

    def _pay(self, uow: UnitOfWork, order_ref: str, user_id: int) -> PaymentResult:
        now = self.ctx.clock.now()
        r = uow.repo
        found = r.orders.with_product(order_ref)  # the order locked first, as every payment takes it
        if found is None:
            raise OrderNotFound(ref=order_ref[:32])
        order, product = found
        if order.user_id != user_id:
            raise NotOrderOwner(ref=order.ref)
        charge = balance_charge(order)
        if r.payments.get(charge.provider, charge.charge_id) is not None:
            return confirm(uow, self.ctx.config, now, charge)  # a replay: its first outcome, no change
        buyer = r.users.get(order.user_id)
        if buyer is None:
            raise IntegrityViolation(f"order {order.id} has no buyer")
        _check_payable(order, buyer, product, now)
        spend(uow, order, now, f"user:{user_id}")
        result = confirm(uow, self.ctx.config, now, charge)
        if result.outcome is not PaymentStatus.ACCEPTED:  # checked above: a bug, never kept
            raise IntegrityViolation(f"balance payment of order {order.id} was not accepted: {result.reason}")
        uow.commit()
        return result


def _check_payable(order: Order, buyer: User, product: Product, now: datetime) -> None:
    """What pre-checkout asks of a Stars payment: the buyer and product still allowed, the order pending
    and its reservation unexpired. (One provider pays an order: a paid order is never paid again.)"""
    check_buyer_and_product(buyer, product)
    if order.status is not OrderStatus.PENDING:
        raise InvalidOrderState(status=str(order.status))
    if now >= order.expires_at:
        raise ReservationExpired(ref=order.ref)


# ---------------------------------------------------------------- transactions (on the database thread)


def _available(uow: UnitOfWork, user_id: int, currency: str) -> int:
    return uow.repo.ledger.balance(user_id, AccountKind.AVAILABLE, currency)


def _quote(uow: UnitOfWork, order_ref: str) -> tuple[Order, User, Product, int, bool] | None:
    r = uow.repo
    found = r.orders.with_buyer_and_product(order_ref)
    if found is None:
        return None
    order, buyer, product = found
    available = r.ledger.balance(order.user_id, AccountKind.AVAILABLE, order.currency)
    pay = r.payments.get(BALANCE, balance_charge(order).charge_id)
    paid = pay is not None and pay.status == PaymentStatus.ACCEPTED
    return order, buyer, product, available, paid
