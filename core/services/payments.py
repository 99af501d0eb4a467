"""Payments as the channels reach them: pre-checkout, durable payment notices, and the transactions
that confirm a charge (what becomes of the charge inside them is ``charges``; an admin's "mark paid" is
``manual_payments``).

A channel hands over what it was told (``receive_notice``): the notice, the confirmation and "this notice is
done" commit together. Should that fail, the notice is recorded on its own (``record_notice``) and stays
pending; ``process_due_notices`` retries it with backoff until it succeeds, so a charge is never lost
because handling it failed once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from core.context import Context
from core.errors import (
    IntegrityViolation,
    InvalidInput,
    InvalidOrderState,
    NotOrderOwner,
    OrderNotFound,
    ReservationExpired,
)
from core.models import Charge, Order, OrderStatus, PaymentResult, Product, User, UserIdentity
from core.services.charges import LostRace, check_charge, confirm, owe_unconfirmable
from core.services.checkout import check_buyer_and_product
from core.services.manual_payments import Guard, confirm_manual
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
        check_charge(provider, charge_id)
        charge = Charge(provider, charge_id, order_ref, amount, currency, payer_id)
        return await self._transaction(self._confirm, charge)

    async def _transaction(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work(uow, now, *args)`` in one write transaction and commit; once more if it lost a race
        to a twin."""
        for attempt in (1, 2):
            try:
                return await self.ctx.write(self._committed, work, args)
            except LostRace:
                if attempt == 2:
                    raise IntegrityViolation("a payment kept changing under us") from None
        raise AssertionError("unreachable")

    def _committed(self, uow: UnitOfWork, work: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        out = work(uow, self.ctx.clock.now(), *args)
        uow.commit()
        return out

    async def confirm_manual(
        self,
        order_ref: str,
        amount: int,
        *,
        note: str,
        actor: str,
        guard: Guard | None = None,
        with_commission: bool = False,
    ) -> PaymentResult:
        """A payment an admin received outside the chat ("mark paid"), confirmed like any provider's in one
        transaction: provider ``manual``, charge id ``manual:<order ref>`` (one per order, so a replayed
        confirmation changes nothing), paid by the order's buyer. The order is delivered (or waits for an
        admin), or, when it was paid meanwhile, this payment is owed back like any second charge.

        ``amount`` must be the order's (else nothing is recorded); ``guard(order, product)``, run with the
        order locked, may refuse (an admin's scope); the admin, their note and ``with_commission`` (the
        distributors earn commission on it; by default they do not) are audited."""
        if type(amount) is not int or amount <= 0:
            raise InvalidInput("amount must be a positive whole number of minor units", field="amount")
        return await self._transaction(
            confirm_manual, self.ctx.config, order_ref, amount, note, actor, guard, with_commission is True
        )

    def _confirm(self, uow: UnitOfWork, now: datetime, c: Charge) -> PaymentResult:
        return confirm(uow, self.ctx.config, now, c)

    # ------------------------------------------------------------------ durable notices

    async def record_notice(self, charge: Charge, *, raw: dict[str, Any]) -> int:
        """Write a payment notice as received, in its own small transaction, before anything is done
        with it. Idempotent on ``(provider, charge_id)``: returns the id of the notice either way. A
        briefly locked database is retried a few times before giving up."""
        provider, charge_id = charge.provider, charge.charge_id
        check_charge(provider, charge_id)

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
        check_charge(charge.provider, charge.charge_id)
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

    async def recorded(self, provider: str, charge_id: str) -> bool:
        """Whether the shop has this charge: a payment, whatever became of it since, or a notice of it
        not processed yet."""
        return await self.ctx.read(_recorded, provider, charge_id)

    async def refund_unconfirmable(
        self, charge: Charge, *, reason: str, notice_id: int | None = None
    ) -> PaymentResult:
        """A charge that cannot be confirmed (a garbage payload, processing that keeps failing): record it
        as ``refund_due`` and queue its refund to the payer, marking its notice done. Idempotent: a charge
        already recorded (delivered, rejected, refunded) is left as it is."""
        check_charge(charge.provider, charge.charge_id)
        return await self._transaction(self._refund_unconfirmable, charge, reason, notice_id)

    def _refund_unconfirmable(
        self, uow: UnitOfWork, now: datetime, charge: Charge, reason: str, notice_id: int | None
    ) -> PaymentResult:
        if notice_id is not None:
            uow.repo.notices.get(notice_id, lock=True)  # notice → payments, as process_notice
        result = owe_unconfirmable(uow, now, charge, reason)
        if notice_id is not None:
            uow.repo.notices.mark_done(notice_id, now)
        return result


# ---------------------------------------------------------------- transactions (on the database thread)


def _order_and_buyer(uow: UnitOfWork, order_ref: str) -> tuple[Order, User, Product] | None:
    return uow.repo.orders.with_buyer_and_product(order_ref)


def _recorded(uow: UnitOfWork, provider: str, charge_id: str) -> bool:
    r = uow.repo
    return r.payments.get(provider, charge_id) is not None or r.notices.id_of(provider, charge_id) is not None
