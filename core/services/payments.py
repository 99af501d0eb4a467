"""Payments: pre-checkout, durable payment notices, and the one idempotent confirmation.

A channel hands over what it was told (``receive_notice``): the notice, the confirmation and "this notice is
done" commit together. Should that fail, the notice is recorded on its own (``record_notice``) and stays
pending; ``process_due_notices`` retries it with backoff until it succeeds, so a charge is never lost
because handling it failed once.

Every charge ends delivered or refunded to whoever paid it: money the shop cannot keep (an unknown
order, a wrong amount, a payer who does not own the order, a late payment the purchase rules refuse, a
second charge) is recorded and queued for refund to the payer in the same transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from core.context import Context
from core.errors import (
    IntegrityViolation,
    InvalidInput,
    InvalidOrderState,
    ManualAmountMismatch,
    NotOrderOwner,
    OrderNotFound,
    ReservationExpired,
)
from core.events import PaymentRejected, RefundOwed
from core.models import (
    Charge,
    Order,
    OrderStatus,
    PaymentResult,
    PaymentStatus,
    Product,
    User,
    UserIdentity,
)
from core.repositories import Repositories
from core.services.checkout import check_buyer_and_product, refusal_late, refusal_on_time
from core.services.fulfilment import fulfil, transition
from core.services.notices import (
    NoticeOutcome,
    add_notice,
    due_notices,
    insert_notice,
    reschedule_notice,
)
from core.services.transient import describe, is_transient, retry_transient
from core.uow import UnitOfWork

log = logging.getLogger(__name__)


_T = TypeVar("_T")

MANUAL = "manual"  # the provider of a payment an admin received outside the chat ("mark paid")


class _LostRace(Exception):
    """A twin of this charge committed between our check and our insert: start again (it is a replay)."""


def _check_charge(provider: str, charge_id: str) -> None:
    if not provider or not charge_id or len(charge_id) > 128 or len(provider) > 16:
        raise InvalidInput("provider and charge id are required", field="charge_id")


def _actor(c: Charge) -> str:
    return f"payment:{c.provider}"


def _mismatch(c: Charge, order: Order | None) -> str | None:
    """Why a charge pays for nothing the shop sells, or None."""
    if order is None:
        return "unknown_order"
    if c.payer_id != order.user_id:
        return "not_owner"  # a forwarded invoice paid by someone else: never delivered to anybody
    if c.amount != order.amount or c.currency != order.currency:
        return "amount_mismatch"
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
    )
    if not inserted:
        raise _LostRace()


class PaymentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ pre-checkout

    async def check_payable(
        self, order_ref: str, amount: int, currency: str, *, payer: int | UserIdentity
    ) -> Order:
        """What a channel asks just before the payer is charged (Telegram's pre_checkout_query): does
        the payer own this order, is it still pending, unexpired, for exactly this amount? Raises a
        ShopError when not.

        ``payer`` is our user id, or who they are on the channel: the order's buyer is read with the order
        (one statement), so the channel need not look its user up first on this deadline-bound path."""
        now = self.ctx.clock.now()
        found = await self.ctx.read(_order_and_buyer, order_ref[:128])
        if found is None:
            raise OrderNotFound(ref=order_ref)
        order, user, product = found
        owner = (
            order.user_id == payer
            if isinstance(payer, int)
            else (user.channel, user.external_id) == (payer.channel, payer.external_id)
        )
        if not owner:
            raise NotOrderOwner(ref=order_ref)
        check_buyer_and_product(user, product)  # blocklisted or taken off sale since checkout
        if order.status is not OrderStatus.PENDING:
            raise InvalidOrderState(status=str(order.status))
        if now >= order.expires_at:
            raise ReservationExpired(ref=order_ref)
        if amount != order.amount or currency != order.currency:
            raise InvalidInput("amount or currency differs from the order", field="amount")
        return order

    # ------------------------------------------------------------------ confirmation

    async def confirm_payment(
        self,
        provider: str,
        charge_id: str,
        order_ref: str,
        amount: int,
        currency: str,
        *,
        payer_id: int | None = None,
    ) -> PaymentResult:
        """Record a payment and deliver the order it pays for, in one transaction.

        Idempotent on ``(provider, charge_id)``: a replay returns the first outcome and changes nothing.
        ``payer_id`` is our user id of whoever paid; without it the order's owner is taken to be the payer.
        """
        _check_charge(provider, charge_id)
        charge = Charge(provider, charge_id, order_ref, amount, currency, payer_id)
        return await self._transaction(self._confirm, charge)

    async def _transaction(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(uow, now, *args)`` in one write transaction and commit; once more if it lost a race
        to a twin."""
        for attempt in (1, 2):
            try:
                return await self.ctx.write(self._committed, work, args)
            except _LostRace:
                if attempt == 2:
                    raise IntegrityViolation("a payment kept changing under us") from None
        raise AssertionError("unreachable")

    def _committed(self, uow: UnitOfWork, work: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        out = work(uow, self.ctx.clock.now(), *args)
        uow.commit()
        return out

    def _confirm(self, uow: UnitOfWork, now: datetime, c: Charge) -> PaymentResult:
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
            return self._reject(uow, c, order, rejection, now)
        assert order is not None and product is not None
        status, reason = self._judge(uow, order, product, now)
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
            updated = self._give_back(uow, c, order, reason, now)
        return PaymentResult(status, updated, replay=False, reason=reason)

    def _judge(
        self, uow: UnitOfWork, order: Order, product: Product, now: datetime
    ) -> tuple[PaymentStatus, str | None]:
        """May the shop keep this payment for ``order``? ``(ACCEPTED, None)`` or ``(REFUND_DUE, why)``."""
        if order.status is OrderStatus.PENDING:
            reason = refusal_on_time(uow.repo, order, product)
        elif order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED):
            reason = refusal_late(uow, self.ctx.config, order, product, now)  # takes stock again
        else:  # already paid (or being refunded): a second charge is given back
            reason = "already_paid"
        return (PaymentStatus.ACCEPTED, None) if reason is None else (PaymentStatus.REFUND_DUE, reason)

    def _reject(
        self, uow: UnitOfWork, c: Charge, order: Order | None, reason: str, now: datetime
    ) -> PaymentResult:
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

    def _give_back(
        self, uow: UnitOfWork, c: Charge, order: Order, reason: str | None, now: datetime
    ) -> Order:
        """A payment the purchase rules refuse, or a second charge: the money is owed back. A refused
        payment's order gives its stock back and waits for the refund; a paid order stays as it is."""
        updated = order
        if reason != "already_paid":
            if order.status is OrderStatus.PENDING:
                uow.repo.keys.release_for_orders([order.id])  # reserved for it: back to stock
                uow.stock_moved = True
            updated = transition(uow.repo, order, OrderStatus.REFUND_DUE)
        owed = dataclasses.replace(c, order_ref=order.ref)
        uow.emit(RefundOwed(at=now, actor=_actor(c), charge=owed, reason=reason))
        return updated

    async def confirm_manual(
        self,
        order_ref: str,
        amount: int,
        *,
        note: str,
        actor: str,
        guard: Callable[[Order, Product], None] | None = None,
    ) -> PaymentResult:
        """A payment an admin received outside the chat ("mark paid"), confirmed like any provider's in one
        transaction: provider ``manual``, charge id ``manual:<order ref>`` (one per order, so a replayed
        confirmation changes nothing), paid by the order's buyer. The order is delivered (or waits for an
        admin), or, when it was paid meanwhile, this payment is owed back like any second charge.

        ``amount`` must be the order's (else nothing is recorded); ``guard(order, product)``, run with the
        order locked, may refuse (an admin's scope); the admin and their note are audited."""
        if type(amount) is not int or amount <= 0:
            raise InvalidInput("amount must be a positive whole number of minor units", field="amount")
        return await self._transaction(self._confirm_manual, order_ref, amount, note, actor, guard)

    def _confirm_manual(
        self,
        uow: UnitOfWork,
        now: datetime,
        order_ref: str,
        amount: int,
        note: str,
        actor: str,
        guard: Callable[[Order, Product], None] | None,
    ) -> PaymentResult:
        r = uow.repo
        found = r.orders.with_product(order_ref[:128])  # the order locked, as _confirm takes it
        if found is None:
            raise OrderNotFound(ref=order_ref)
        order, product = found
        if guard is not None:
            guard(order, product)
        if amount != order.amount:
            raise ManualAmountMismatch(expected=order.amount, currency=order.currency)
        charge = Charge(MANUAL, f"{MANUAL}:{order.ref}", order.ref, amount, order.currency, order.user_id)
        result = self._confirm(uow, now, charge)
        if not result.replay:
            r.audit.add(
                now,
                actor,
                "payment_marked_paid",
                product_id=order.product_id,
                order_id=order.id,
                charge_id=charge.charge_id,
                amount=amount,
                currency=order.currency,
                note=note,
                outcome=str(result.outcome),
            )
        return result

    # ------------------------------------------------------------------ durable notices

    async def record_notice(self, charge: Charge, *, raw: dict[str, Any]) -> int:
        """Write a payment notice as received, in its own small transaction, before anything is done
        with it. Idempotent on ``(provider, charge_id)``: returns the id of the notice either way. A
        briefly locked database is retried a few times before giving up."""
        provider, charge_id = charge.provider, charge.charge_id
        _check_charge(provider, charge_id)

        return await retry_transient(
            lambda: self.ctx.write(add_notice, charge, raw, self.ctx.clock.now()),
            f"recording payment notice {provider}/{charge_id}",
        )

    async def receive_notice(self, charge: Charge, *, raw: dict[str, Any]) -> NoticeOutcome:
        """``record_notice`` then ``process_notice``, in one transaction when all goes well: the notice,
        the confirmation and "done" commit together (a notice seen before is processed as it stands).
        When that transaction fails, the notice is recorded on its own and processed once more, as
        ``process_notice`` does: a twin that finished the charge meanwhile makes it a replay, and a notice
        that fails again stays pending for the retry job. Raises only if even that record cannot be
        written (the caller then holds the one copy of the charge)."""
        _check_charge(charge.provider, charge.charge_id)
        head: list[Any] = []
        try:
            nid, result = await self._transaction(self._receive, charge, raw, head)
        except Exception as e:
            log.warning(
                "payment %s/%s: confirming it failed (%s); its notice is recorded and tried again",
                charge.provider,
                charge.charge_id,
                describe(e),
            )
            return await self.process_notice(await self.record_notice(charge, raw=raw))
        charge_id, order_ref = head
        return NoticeOutcome(nid, charge_id, order_ref, result)

    def _receive(
        self, uow: UnitOfWork, now: datetime, charge: Charge, raw: dict[str, Any], head: list[Any]
    ) -> tuple[int, PaymentResult]:
        nid, inserted = insert_notice(uow, charge, raw, now)
        if not inserted:
            return nid, self._process(uow, now, nid, head)
        # Just inserted: the notice is the charge as given (``_process`` would read it back).
        head[:] = [charge.charge_id, charge.order_ref[:128]]
        result = self._confirm(uow, now, charge)
        uow.repo.notices.mark_done(nid, now)
        return nid, result

    async def process_notice(self, notice_id: int) -> NoticeOutcome:
        """Confirm the payment a notice reports and mark the notice done, in one transaction. On failure
        the notice stays pending for a later attempt (``next_attempt_at`` backs off); never raises."""
        head: list[Any] = []  # the notice's charge id and order, for the report when processing fails
        try:
            result = await self._transaction(self._process, notice_id, head)
        except Exception as e:
            return await self._failed(notice_id, head or ["?", "?"], e)
        charge_id, order_ref = head
        return NoticeOutcome(notice_id, charge_id, order_ref, result)

    async def _failed(self, notice_id: int, head: list[Any], e: Exception) -> NoticeOutcome:
        """A notice whose processing failed: logged, its next attempt pushed back."""
        charge_id, order_ref = head
        if is_transient(e):
            log.warning("payment notice %s (%s) failed: %s", notice_id, charge_id, describe(e))
        else:
            log.exception("payment notice %s (%s) failed", notice_id, charge_id, exc_info=e)
        attempts = await self._reschedule(notice_id, describe(e))
        return NoticeOutcome(
            notice_id, charge_id, order_ref, None, attempts, describe(e), transient=is_transient(e)
        )

    def _process(self, uow: UnitOfWork, now: datetime, notice_id: int, head: list[Any]) -> PaymentResult:
        n = uow.repo.notices.get(notice_id, lock=True)
        if n is None:
            raise InvalidInput(f"no payment notice {notice_id}", field="notice_id")
        head[:] = [n.charge_id, n.order_ref]
        charge = Charge(n.provider, n.charge_id, n.order_ref, n.amount, n.currency, n.payer_id)
        result = self._confirm(uow, now, charge)
        uow.repo.notices.mark_done(notice_id, now)
        return result

    async def _reschedule(self, notice_id: int, error: str) -> int:
        """Push a failed notice's next attempt back. Returns its failed attempts (0 if unknown)."""
        try:
            return await self.ctx.write(reschedule_notice, notice_id, self.ctx.clock.now(), error)
        except Exception as e:  # it stays due as it was: the next run tries again
            log.warning("could not reschedule payment notice %s: %s", notice_id, describe(e))
            return 0

    async def process_due_notices(self, *, limit: int = 100) -> list[NoticeOutcome]:
        """Process every pending notice whose next attempt is due (what the retry job runs)."""
        due = await self.ctx.read(due_notices, self.ctx.clock.now(), limit)
        return [await self.process_notice(nid) for nid in due]

    async def refund_unconfirmable(
        self, charge: Charge, *, reason: str, notice_id: int | None = None
    ) -> PaymentResult:
        """A charge that cannot be confirmed (a garbage payload, processing that keeps failing): record it
        as ``refund_due`` and queue its refund to the payer, marking its notice done. Idempotent: a charge
        already recorded (delivered, rejected, refunded) is left as it is."""
        _check_charge(charge.provider, charge.charge_id)
        return await self._transaction(self._refund_unconfirmable, charge, reason, notice_id)

    def _refund_unconfirmable(
        self, uow: UnitOfWork, now: datetime, charge: Charge, reason: str, notice_id: int | None
    ) -> PaymentResult:
        r = uow.repo
        if notice_id is not None:
            r.notices.get(notice_id, lock=True)  # notice → payments, as process_notice
        seen = r.payments.get(charge.provider, charge.charge_id)
        if seen is not None:
            result = PaymentResult(PaymentStatus(seen.status), None, replay=True, reason=seen.reason)
        else:
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
            result = PaymentResult(PaymentStatus.REFUND_DUE, None, replay=False, reason=reason)
        if notice_id is not None:
            r.notices.mark_done(notice_id, now)
        return result


# ---------------------------------------------------------------- transactions (on the database thread)


def _order_and_buyer(uow: UnitOfWork, order_ref: str) -> tuple[Order, User, Product] | None:
    return uow.repo.orders.with_buyer_and_product(order_ref)
