"""Orders: checkout reserves, a payment confirms and delivers, the sweeper expires, admins refund.

Every method is one transaction. Every status change is guarded by the status it expects and checks the
row count; key movements check that exactly the expected number of rows moved. A check that fails raises,
and the unit of work rolls the whole transaction back.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from core.errors import (
    CurrencyNotAccepted,
    DailyLimitReached,
    IntegrityViolation,
    InvalidInput,
    InvalidOrderState,
    LimitExceeded,
    OrderNotFound,
    OutOfStock,
    PhoneRequired,
    ProductNotFound,
    ProductUnavailable,
    QuantityOutOfRange,
    ReservationExpired,
    UserBlocklisted,
)
from core.models import (
    DeliveryKind,
    KeyStatus,
    Order,
    OrderStatus,
    PaymentResult,
    PaymentStatus,
    Product,
    RevealedKeys,
    check_transition,
)
from core.repositories import Repositories
from core.services import STARS, Context
from core.vault import clean_text

log = logging.getLogger(__name__)

# Outbox message kinds. Payloads carry references, never keys: a key is decrypted when it is sent.
MSG_DELIVERED = "order_delivered"
MSG_AWAITING_MANUAL = "order_awaiting_manual"
MSG_REFUND = "payment_refund"  # the channel pays a charge back, then tells the buyer

MAX_MANUAL_CONTENT = 4000


def _refund_payload(
    provider: str, charge_id: str, order_ref: str, reason: str | None, amount: int, currency: str
) -> dict[str, Any]:
    return {
        "provider": provider,
        "charge_id": charge_id,
        "order_ref": order_ref[:128],
        "reason": reason,
        "amount": amount,
        "currency": currency[:8],
    }


def new_order_ref() -> str:
    """An unguessable order reference: 80 random bits, base32, easy to read out to support."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii")


class OrderService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ checkout

    async def checkout(self, user_id: int, product_id: int, quantity: int, currency: str) -> Order:
        """Create a pending order and reserve its stock: exactly ``quantity`` keys or nothing at all.

        Purchase limits are checked inside the same write transaction, with the buyer's row locked
        (PostgreSQL) or the database write lock held (SQLite), so two checkouts of one buyer cannot both
        slip under a limit.
        """
        if type(quantity) is not int:
            raise InvalidInput("quantity must be a whole number", field="quantity")
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            r = uow.repo
            user, product = await r.users.with_product(user_id, product_id)
            if user is None:
                raise InvalidInput(f"no user {user_id}", field="user_id")
            if user.blocklisted:
                raise UserBlocklisted()
            if product is None:
                raise ProductNotFound(product_id=product_id)
            if not product.active:
                raise ProductUnavailable(product_id=product_id, name=product.name)
            amount = self._price(product, currency) * quantity
            if not product.min_qty <= quantity <= product.max_qty:
                raise QuantityOutOfRange(min=product.min_qty, max=product.max_qty, quantity=quantity)
            if product.requires_phone and not user.phone:
                raise PhoneRequired()
            await self._check_limits(r, product, user_id, quantity, now)

            order = await r.orders.add(
                ref=new_order_ref(),
                user_id=user_id,
                product_id=product_id,
                quantity=quantity,
                currency=currency,
                amount=amount,
                status=OrderStatus.PENDING,
                created_at=now,
                expires_at=now + self.ctx.config.reservation_ttl,
            )
            key_ids: list[int] = []
            if product.delivery_kind is DeliveryKind.UNIQUE:
                key_ids = await r.keys.reserve(product_id, order.id, quantity)
                if len(key_ids) != quantity:
                    # Not enough: raising rolls back the partial reservation and the order with it.
                    raise OutOfStock(product_id=product_id, name=product.name, available=len(key_ids))
            elif (
                product.delivery_kind is DeliveryKind.SHARED
                and await r.keys.current_shared_key(product_id) is None
            ):
                raise OutOfStock(product_id=product_id, name=product.name, available=0)
            await r.audit.add(
                now,
                f"user:{user_id}",
                "order_created",
                product_id=product_id,
                order_id=order.id,
                quantity=quantity,
                amount=amount,
                currency=currency,
                reserved=key_ids,
            )
            await uow.commit()
        return order

    def _price(self, product: Product, currency: str) -> int:
        if currency == STARS:
            unit = product.price_stars
        elif currency == self.ctx.config.currency:
            unit = product.price
        else:
            raise CurrencyNotAccepted(currency=currency)
        if unit <= 0:
            raise CurrencyNotAccepted(currency=currency)
        return unit

    async def _check_limits(
        self, r: Repositories, product: Product, user_id: int, quantity: int, now: datetime
    ) -> None:
        if product.user_limit is not None and product.user_limit_hours is not None:
            since = now - timedelta(hours=product.user_limit_hours)
            used = await r.orders.units_since(product.id, since, user_id=user_id)
            if used + quantity > product.user_limit:
                raise LimitExceeded(
                    limit=product.user_limit,
                    hours=product.user_limit_hours,
                    remaining=max(0, product.user_limit - used),
                )
        if product.daily_limit is not None:
            # Serialise checkouts of a day-limited product (PostgreSQL); SQLite is serial already.
            await r.catalog.product(product.id, lock=True)
            tz = self.ctx.config.timezone
            local = now.astimezone(tz)
            day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            used = await r.orders.units_since(product.id, day_start)
            if used + quantity > product.daily_limit:
                raise DailyLimitReached(
                    limit=product.daily_limit, remaining=max(0, product.daily_limit - used)
                )

    # ------------------------------------------------------------------ pre-checkout

    async def check_payable(self, order_ref: str, amount: int, currency: str) -> Order:
        """What a channel asks just before the buyer is charged (Telegram's pre_checkout_query): is this
        order still pending, unexpired, for exactly this amount? Raises a ShopError when not."""
        now = self.ctx.clock.now()
        async with self.ctx.uow(write=False) as uow:
            order = await uow.repo.orders.by_ref(order_ref)
        if order is None:
            raise OrderNotFound(ref=order_ref)
        if order.status is not OrderStatus.PENDING:
            raise InvalidOrderState(status=str(order.status))
        if now >= order.expires_at:
            raise ReservationExpired(ref=order_ref)
        if amount != order.amount or currency != order.currency:
            raise InvalidInput("amount or currency differs from the order", field="amount")
        return order

    # ------------------------------------------------------------------ payment

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
        Money that cannot be kept (a wrong amount, an unknown order, no stock left for a late payment, a
        second charge) is queued for refund in the same transaction: an outbox row the channel acts on.
        ``payer_id`` (our user id of whoever paid) is who hears about a refund when the order is unknown.
        """
        if not provider or not charge_id or len(charge_id) > 128 or len(provider) > 16:
            raise InvalidInput("provider and charge id are required", field="charge_id")
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            r = uow.repo
            found = await r.orders.with_product(order_ref[:128])
            order, product = found if found else (None, None)

            async def record(status: PaymentStatus, reason: str | None) -> bool:
                """Insert the payment once. False means (provider, charge_id) was recorded before: a replay,
                and leaving without commit rolls back everything this transaction did."""
                return await r.payments.add_once(
                    provider=provider,
                    charge_id=charge_id,
                    order_id=order.id if order else None,
                    order_ref=order_ref[:128],
                    amount=amount,
                    currency=currency[:8],
                    status=status,
                    reason=reason,
                    created_at=now,
                )

            async def replay() -> PaymentResult:
                seen = await r.payments.get(provider, charge_id)
                assert seen is not None
                prior = await r.orders.get(seen.order_id) if seen.order_id is not None else None
                return PaymentResult(PaymentStatus(seen.status), prior, replay=True, reason=seen.reason)

            actor = f"payment:{provider}"
            if order is None or amount != order.amount or currency != order.currency:
                rejection = "unknown_order" if order is None else "amount_mismatch"
                if not await record(PaymentStatus.REJECTED, rejection):
                    return await replay()
                await r.audit.add(
                    now,
                    actor,
                    "payment_rejected",
                    order_id=order.id if order else None,
                    charge_id=charge_id,
                    amount=amount,
                    currency=currency[:8],
                    reason=rejection,
                )
                refund_to = order.user_id if order else payer_id
                if refund_to is not None:
                    await r.outbox.add(
                        refund_to,
                        MSG_REFUND,
                        _refund_payload(provider, charge_id, order_ref, rejection, amount, currency),
                        now,
                    )
                await uow.commit()
                log.warning("payment %s/%s rejected: %s", provider, charge_id, rejection)
                return PaymentResult(PaymentStatus.REJECTED, order, replay=False, reason=rejection)

            assert product is not None
            status: PaymentStatus = PaymentStatus.ACCEPTED
            reason: str | None = None
            if order.status in (OrderStatus.PENDING, OrderStatus.EXPIRED, OrderStatus.CANCELLED):
                if order.status is not OrderStatus.PENDING and not await self._re_reserve(r, order, product):
                    status, reason = PaymentStatus.REFUND_DUE, "out_of_stock"
            else:
                # This order was already paid (or is being refunded): a second charge is given back.
                status, reason = PaymentStatus.REFUND_DUE, "already_paid"

            if not await record(status, reason):
                return await replay()  # leaving without commit also undoes a re-reservation made above
            await r.audit.add(
                now,
                actor,
                "payment_confirmed" if status is PaymentStatus.ACCEPTED else "payment_refund_due",
                product_id=order.product_id,
                order_id=order.id,
                charge_id=charge_id,
                amount=amount,
                currency=currency,
                reason=reason,
            )
            updated = order
            if status is PaymentStatus.ACCEPTED:
                updated = await self._fulfil(r, order, product, now, actor)
            else:
                if reason == "out_of_stock":
                    updated = await self._transition(r, order, OrderStatus.REFUND_DUE)
                await r.outbox.add(
                    order.user_id,
                    MSG_REFUND,
                    _refund_payload(provider, charge_id, order.ref, reason, amount, currency),
                    now,
                )
            await uow.commit()
        return PaymentResult(status, updated, replay=False, reason=reason)

    async def _re_reserve(self, r: Repositories, order: Order, product: Product) -> bool:
        """A payment arrived for an expired or cancelled order: take stock again if there is any."""
        if product.delivery_kind is DeliveryKind.UNIQUE:
            got = await r.keys.reserve(product.id, order.id, order.quantity)
            if len(got) != order.quantity:
                await r.keys.release_for_orders([order.id])
                return False
        elif product.delivery_kind is DeliveryKind.SHARED:
            return await r.keys.current_shared_key(product.id) is not None
        return True

    async def _transition(self, r: Repositories, order: Order, new: OrderStatus, **values: Any) -> Order:
        check_transition(order.status, new)
        updated = await r.orders.set_status(order.id, order.status, new, **values)
        if updated is None:
            raise IntegrityViolation(f"order {order.id} left {order.status} under us")
        return updated

    async def _fulfil(
        self, r: Repositories, order: Order, product: Product, now: datetime, actor: str
    ) -> Order:
        """Paid: hand over the keys (or queue a manual delivery) and write the buyer's message."""
        if product.delivery_kind is DeliveryKind.MANUAL:
            paid = await self._transition(r, order, OrderStatus.PAID, paid_at=now)
            await r.outbox.add(order.user_id, MSG_AWAITING_MANUAL, {"order_ref": order.ref}, now)
            return paid
        if product.delivery_kind is DeliveryKind.UNIQUE:
            sold = await r.keys.mark_sold(order.id, now)
            if len(sold) != order.quantity:
                raise IntegrityViolation(
                    f"order {order.id} holds {len(sold)} keys, paid for {order.quantity}"
                )
        else:
            shared = await r.keys.current_shared_key(product.id)
            if shared is None:
                raise IntegrityViolation(f"shared product {product.id} lost its key")
            await r.keys.link_shared(order.id, shared)
            sold = [shared]
        delivered = await self._transition(
            r,
            order,
            OrderStatus.DELIVERED,
            paid_at=now,
            delivered_at=now,
            membership_expires_at=self._membership_end(product, now),
        )
        await r.audit.add(now, actor, "keys_delivered", product_id=product.id, order_id=order.id, keys=sold)
        await r.outbox.add(order.user_id, MSG_DELIVERED, {"order_ref": order.ref}, now)
        return delivered

    @staticmethod
    def _membership_end(product: Product, delivered_at: datetime) -> datetime | None:
        return delivered_at + timedelta(days=product.validity_days) if product.validity_days else None

    # ------------------------------------------------------------------ manual delivery

    async def deliver_manually(self, order_ref: str, content: str, *, actor: str) -> Order:
        """An admin fulfils a paid manual-delivery order; the content is stored in the vault like a key."""
        content = clean_text(content)  # invisible characters removed, control/bidi refused, like a key
        if not 1 <= len(content) <= MAX_MANUAL_CONTENT:
            raise InvalidInput(f"content must be 1 to {MAX_MANUAL_CONTENT} characters", field="content")
        now = self.ctx.clock.now()
        vault = self.ctx.vault
        async with self.ctx.uow() as uow:
            r = uow.repo
            order = await self._order_for_update(r, order_ref)
            product = await r.catalog.product(order.product_id)
            assert product is not None
            if product.delivery_kind is not DeliveryKind.MANUAL or order.status is not OrderStatus.PAID:
                raise InvalidOrderState(status=str(order.status))
            bidx = vault.blind_index(product.id, f"manual\x00{order.id}")
            key_id = await r.keys.add_one(
                product_id=product.id,
                status=KeyStatus.SOLD,
                order_id=order.id,
                kid=vault.current_kid,
                blind_index=bidx,
                ciphertext=vault.encrypt(content, vault.associated_data(product.id, bidx)),
                created_at=now,
                sold_at=now,
            )
            updated = await self._transition(
                r,
                order,
                OrderStatus.DELIVERED,
                delivered_at=now,
                membership_expires_at=self._membership_end(product, now),
            )
            await r.audit.add(
                now, actor, "keys_delivered", product_id=product.id, order_id=order.id, keys=[key_id]
            )
            await r.outbox.add(order.user_id, MSG_DELIVERED, {"order_ref": order.ref}, now)
            await uow.commit()
        return updated

    # ------------------------------------------------------------------ expiry and cancellation

    async def expire_due(self, *, batch: int = 500) -> int:
        """Expire pending orders past their TTL and return their keys to stock. Returns how many."""
        now = self.ctx.clock.now()
        total = 0
        while True:
            async with self.ctx.uow() as uow:
                r = uow.repo
                due = await r.orders.due_to_expire(now, batch)
                if not due:
                    return total
                ids = [oid for oid, _ in due]
                if await r.orders.expire(ids) != len(ids):
                    raise IntegrityViolation("an order picked for expiry changed under us")
                released = await r.keys.release_for_orders(ids)
                for oid in ids:
                    await r.audit.add(now, "system", "order_expired", order_id=oid)
                if released:
                    await r.audit.add(now, "system", "keys_released", keys=released, orders=ids)
                await uow.commit()
            total += len(ids)
            if len(ids) < batch:
                return total

    async def cancel(self, order_ref: str, *, user_id: int | None, actor: str) -> Order:
        """The buyer (or an admin, ``user_id=None``) cancels a pending order; its keys return to stock."""
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            r = uow.repo
            order = await self._order_for_update(r, order_ref, user_id=user_id)
            updated = await self._transition(r, order, OrderStatus.CANCELLED)
            released = await r.keys.release_for_orders([order.id])
            await r.audit.add(
                now,
                actor,
                "order_cancelled",
                product_id=order.product_id,
                order_id=order.id,
                released=released,
            )
            await uow.commit()
        return updated

    # ------------------------------------------------------------------ refunds

    async def request_refund(self, order_ref: str, *, actor: str, reason: str = "admin") -> Order:
        """Refund a paid or delivered order: keys the buyer never saw go back to stock, revealed ones are
        voided; its accepted payments become ``refund_due`` for the channel to pay back."""
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            r = uow.repo
            order = await self._order_for_update(r, order_ref)
            if order.status not in (OrderStatus.PAID, OrderStatus.DELIVERED):
                raise InvalidOrderState(status=str(order.status))
            revealed = order.revealed_at is not None
            keys = await r.keys.take_back_sold(order.id, void=revealed)
            updated = await self._transition(r, order, OrderStatus.REFUND_DUE)
            for pay in await r.payments.mark_order_refund_due(order.id, reason[:64]):
                await r.outbox.add(
                    order.user_id,
                    MSG_REFUND,
                    _refund_payload(pay[0], pay[1], order.ref, reason, pay[2], pay[3]),
                    now,
                )
            await r.audit.add(
                now,
                actor,
                "keys_voided" if revealed else "keys_restocked",
                product_id=order.product_id,
                order_id=order.id,
                keys=keys,
            )
            await r.audit.add(now, actor, "refund_requested", order_id=order.id, reason=reason[:64])
            await uow.commit()
        return updated

    async def refunds_due(self, order_ref: str) -> list[tuple[str, str, int, str]]:
        """(provider, charge id, amount, currency) of this order's payments still to be paid back."""
        async with self.ctx.uow(write=False) as uow:
            order = await uow.repo.orders.by_ref(order_ref)
            if order is None:
                raise OrderNotFound(ref=order_ref)
            rows = await uow.repo.payments.for_order(order.id)
        due = (PaymentStatus.REFUND_DUE, PaymentStatus.REJECTED)
        return [(p.provider, p.charge_id, p.amount, p.currency) for p in rows if p.status in due]

    async def complete_refund(self, provider: str, charge_id: str, *, actor: str) -> PaymentResult:
        """The channel paid a payment back: mark it, and the order once nothing more is owed."""
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            r = uow.repo
            pay = await r.payments.get(provider, charge_id)
            if pay is None:
                raise InvalidInput("unknown payment", field="charge_id")
            order = await r.orders.get(pay.order_id) if pay.order_id is not None else None
            if pay.status == PaymentStatus.REFUNDED:
                return PaymentResult(PaymentStatus.REFUNDED, order, replay=True, reason=pay.reason)
            due = (PaymentStatus.REFUND_DUE, PaymentStatus.REJECTED)
            if await r.payments.set_status(pay.id, due, PaymentStatus.REFUNDED, refunded_at=now) != 1:
                raise InvalidOrderState(status=str(pay.status))
            if order is not None and order.status is OrderStatus.REFUND_DUE:
                owed = [
                    p for p in await r.payments.for_order(order.id) if p.status == PaymentStatus.REFUND_DUE
                ]
                if not owed:
                    order = await self._transition(r, order, OrderStatus.REFUNDED)
            await r.audit.add(
                now, actor, "payment_refunded", order_id=order.id if order else None, charge_id=charge_id
            )
            await uow.commit()
        return PaymentResult(PaymentStatus.REFUNDED, order, replay=False, reason=pay.reason)

    # ------------------------------------------------------------------ reading and revealing

    async def get(self, order_ref: str, *, user_id: int | None = None) -> Order:
        async with self.ctx.uow(write=False) as uow:
            order = await uow.repo.orders.by_ref(order_ref)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise OrderNotFound(ref=order_ref)
        return order

    async def for_user(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[Order]:
        return [o for o, _ in await self.history(user_id, limit=limit, offset=offset)]

    async def history(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[tuple[Order, str]]:
        """The user's orders, newest first, with product names: what "My orders" shows."""
        async with self.ctx.uow(write=False) as uow:
            return await uow.repo.orders.for_user(user_id, min(max(limit, 1), 100), max(offset, 0))

    async def reveal(self, order_ref: str, *, user_id: int | None, actor: str, reason: str) -> RevealedKeys:
        """Decrypt a delivered order's keys for the buyer (``user_id`` must own it) or an admin
        (``user_id=None``). Every reveal is audited; the first one marks the order as revealed, after
        which a refund voids its keys instead of restocking them."""
        now = self.ctx.clock.now()
        async with self.ctx.uow() as uow:
            r = uow.repo
            found = await r.orders.with_product(order_ref[:128])  # the order locked, with its product
            if found is None or (user_id is not None and found[0].user_id != user_id):
                raise OrderNotFound(ref=order_ref)
            order, product = found
            if order.status is not OrderStatus.DELIVERED:
                raise InvalidOrderState(status=str(order.status))
            sealed = await r.keys.sealed_for_order(order.id)
            plain = [self.ctx.vault.open_key(pid, bidx, blob) for _, pid, bidx, blob in sealed]
            await r.orders.mark_revealed(order.id, now)
            await r.audit.add(
                now,
                actor,
                "keys_revealed",
                product_id=order.product_id,
                order_id=order.id,
                keys=[kid for kid, *_ in sealed],
                reason=reason[:32],
            )
            await uow.commit()
        return RevealedKeys(dataclasses.replace(order, revealed_at=order.revealed_at or now), product, plain)

    async def _order_for_update(
        self, r: Repositories, order_ref: str, *, user_id: int | None = None
    ) -> Order:
        order = await r.orders.by_ref(order_ref, lock=True)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise OrderNotFound(ref=order_ref)
        return order
