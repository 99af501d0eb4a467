"""Refunds: an admin refunds an order, the channel reports each charge it paid back, and an admin records
the charges the channel cannot pay back (fiat, a payment marked paid) once they returned the money by hand.

Locks are taken in one order everywhere: the order row first, then its payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.balance import BALANCE
from core.context import Context, UnitOfWork
from core.errors import InvalidInput, InvalidOrderState, OrderNotFound
from core.events import OrderRefunded, OrderRefundRequested, RefundOwed
from core.messages import RefundMade
from core.models import (
    STARS,
    Charge,
    DeliveryKind,
    Order,
    OrderStatus,
    OwedPayment,
    Payment,
    PaymentResult,
    PaymentStatus,
)
from core.reactions import write_message
from core.services.fulfilment import transition
from core.windows import WECHAT_PAY

_OWED = (PaymentStatus.REFUND_DUE, PaymentStatus.REJECTED)
TELEGRAM = "telegram"  # the provider of Telegram's charges (Stars, and fiat through a provider token)


def paid_back_by_channel(p: Payment) -> bool:
    """Whether the channel pays this charge back by itself: Telegram Stars (``refundStarPayment``), WeChat
    Pay (its refund API, from the WeChat outbox). A payment from the shop balance returns to it in the
    transaction that owes it (``core.balance``); any other owed charge (fiat, a payment marked paid) an
    admin returns by hand, then records it. A charge the channel pays back is never offered by hand: the
    payer would be refunded twice."""
    return (p.provider == TELEGRAM and p.currency == STARS) or p.provider == WECHAT_PAY


def owed_by_hand(payments: list[Payment]) -> list[Payment]:
    """The order's charges still owed back that only an admin can return (``paid_back_by_channel`` not,
    nor a balance payment)."""
    return [
        p
        for p in payments
        if p.status == PaymentStatus.REFUND_DUE and not paid_back_by_channel(p) and p.provider != BALANCE
    ]


@dataclass(frozen=True, slots=True)
class HandRefund:
    order: Order  # as it is now: ``refunded`` once nothing more is owed
    payments: list[Payment]  # the charges recorded as returned now; empty: none was left (a replay)


class RefundService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def request_refund(self, order_ref: str, *, actor: str, reason: str = "admin") -> Order:
        """Refund a paid or delivered order: keys the buyer never saw go back to stock; revealed keys, and
        anything an admin delivered by hand, are voided (never sellable). Its accepted payments become
        ``refund_due``, each queued for refund to whoever paid it."""
        return await self.ctx.write(self._request_refund, order_ref, actor, reason, self.ctx.clock.now())

    def _request_refund(
        self, uow: UnitOfWork, order_ref: str, actor: str, reason: str, now: datetime
    ) -> Order:
        r = uow.repo
        found = r.orders.with_product(order_ref[:128])  # the order locked, then its payments
        if found is None:
            raise OrderNotFound(ref=order_ref)
        order, product = found
        if order.status not in (OrderStatus.PAID, OrderStatus.DELIVERED):
            raise InvalidOrderState(status=str(order.status))
        # Manual content is the admin's answer to this one order, not stock anyone else may buy.
        void = order.revealed_at is not None or product.delivery_kind is DeliveryKind.MANUAL
        keys = r.keys.take_back_sold(order.id, void=void)
        uow.stock_moved = not void  # keys the buyer never saw are back on the shelf
        updated = transition(r, order, OrderStatus.REFUND_DUE)
        uow.emit(
            OrderRefundRequested(
                at=now, actor=actor, order=updated, product=product, reason=reason[:64], voided=void
            )
        )
        for pay in r.payments.mark_order_refund_due(order.id, reason[:64]):
            payer = pay.payer_id if pay.payer_id is not None else order.user_id  # legacy: the owner
            charge = Charge(pay.provider, pay.charge_id, order.ref, pay.amount, pay.currency, payer)
            uow.emit(RefundOwed(at=now, actor=actor, charge=charge, reason=reason))
        r.audit.add(
            now,
            actor,
            "keys_voided" if void else "keys_restocked",
            product_id=order.product_id,
            order_id=order.id,
            keys=keys,
        )
        r.audit.add(now, actor, "refund_requested", order_id=order.id, reason=reason[:64])
        uow.commit()
        return updated

    async def refunds_due(self, order_ref: str) -> list[OwedPayment]:
        """This order's payments still to be paid back, each to whoever paid it."""
        order, rows = await self.ctx.read(_order_payments, order_ref)
        if order is None:
            raise OrderNotFound(ref=order_ref)
        return [
            # A payment recorded before payers were (payer_id NULL) was paid by the order's owner.
            OwedPayment(
                p.provider,
                p.charge_id,
                p.amount,
                p.currency,
                order.user_id if p.payer_id is None else p.payer_id,
            )
            for p in rows
            if p.status in _OWED
        ]

    async def owed_by_provider(self, provider: str, *, limit: int = 100) -> list[Payment]:
        """Charges of ``provider`` still owed back, oldest first: what a channel's reconciliation asks its
        payment platform about (a refund asked for whose answer never came)."""
        return await self.ctx.read(lambda uow: uow.repo.payments.owed(provider, limit))

    async def complete_refund(self, provider: str, charge_id: str, *, actor: str) -> PaymentResult:
        """The channel paid a payment back: mark it, and the order once nothing more is owed.

        The order row is locked before the payment changes and before the owed payments are counted, so
        two completions for one order queue behind each other and the second sees what the first did."""
        return await self.ctx.write(self._complete_refund, provider, charge_id, actor, self.ctx.clock.now())

    def _complete_refund(
        self, uow: UnitOfWork, provider: str, charge_id: str, actor: str, now: datetime
    ) -> PaymentResult:
        r = uow.repo
        pay = r.payments.get(provider, charge_id)
        if pay is None:
            raise InvalidInput("unknown payment", field="charge_id")
        order = r.orders.get(pay.order_id, lock=True) if pay.order_id is not None else None
        pay = r.payments.get(provider, charge_id)  # as it is now that its order is ours
        assert pay is not None
        if pay.status == PaymentStatus.REFUNDED:
            return PaymentResult(PaymentStatus.REFUNDED, order, replay=True, reason=pay.reason)
        if r.payments.set_status(pay.id, _OWED, PaymentStatus.REFUNDED, refunded_at=now) != 1:
            raise InvalidOrderState(status=str(pay.status))
        if order is not None and order.status is OrderStatus.REFUND_DUE:
            owed = [p for p in r.payments.for_order(order.id) if p.status == PaymentStatus.REFUND_DUE]
            if not owed:
                order = transition(r, order, OrderStatus.REFUNDED)
                uow.emit(OrderRefunded(at=now, actor=actor, order=order))
        r.audit.add(now, actor, "payment_refunded", order_id=order.id if order else None, charge_id=charge_id)
        uow.commit()
        return PaymentResult(PaymentStatus.REFUNDED, order, replay=False, reason=pay.reason)

    async def refund_by_hand(self, order_ref: str, note: str, *, actor: str) -> HandRefund:
        """Record that an admin returned the order's hand-refund charges (``owed_by_hand``) outside the
        chat: see ``_refund_by_hand``. The caller validates ``note``."""
        return await self.ctx.write(self._refund_by_hand_ref, order_ref, note, actor, self.ctx.clock.now())

    def _refund_by_hand_ref(
        self, uow: UnitOfWork, order_ref: str, note: str, actor: str, now: datetime
    ) -> HandRefund:
        found = uow.repo.orders.with_product(order_ref[:128])  # the order locked
        if found is None:
            raise OrderNotFound(ref=order_ref)
        return self._refund_by_hand(uow, found[0], note, actor, now)

    def _refund_by_hand(
        self, uow: UnitOfWork, order: Order, note: str, actor: str, now: datetime
    ) -> HandRefund:
        """``order`` locked by the caller. Each charge owed back by hand becomes ``refunded`` (audited with
        who and ``note``), whoever paid it is told (through the outbox), and the order is ``refunded`` once
        nothing more is owed, as when the channel pays back. Idempotent: with nothing left to return by hand
        it changes nothing and returns no payments."""
        r = uow.repo
        due = owed_by_hand(r.payments.for_order(order.id))
        for pay in due:
            if r.payments.set_status(pay.id, _OWED, PaymentStatus.REFUNDED, refunded_at=now) != 1:
                raise InvalidOrderState(status=str(pay.status))
            r.audit.add(
                now,
                actor,
                "payment_refunded_by_hand",
                order_id=order.id,
                charge_id=pay.charge_id,
                amount=pay.amount,
                currency=pay.currency,
                note=note,
            )
            payer = pay.payer_id if pay.payer_id is not None else order.user_id  # legacy: the owner
            told = RefundMade(
                order_ref=order.ref, reason=pay.reason, amount=pay.amount, currency=pay.currency
            )
            write_message(uow, payer, told, now)
        still_owed = any(p.status == PaymentStatus.REFUND_DUE for p in r.payments.for_order(order.id))
        if due and order.status is OrderStatus.REFUND_DUE and not still_owed:
            order = transition(r, order, OrderStatus.REFUNDED)
            uow.emit(OrderRefunded(at=now, actor=actor, order=order))
        uow.commit()
        return HandRefund(order, due)


def _order_payments(uow: UnitOfWork, order_ref: str) -> tuple[Order | None, list[Payment]]:
    order = uow.repo.orders.by_ref(order_ref)
    return order, (uow.repo.payments.for_order(order.id) if order is not None else [])
