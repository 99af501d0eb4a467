"""Orders: reading them, revealing their keys, manual delivery, expiry and cancellation.

Checkout (``core.services.checkout``), payments (``core.services.payments``) and refunds
(``core.services.refunds``) are services of their own; callers ask them directly.

Every method is one transaction. Every status change is guarded by the status it expects and checks the
row count; a check that fails raises, and the unit of work rolls the whole transaction back.
"""

from __future__ import annotations

import dataclasses

from core.context import Context
from core.errors import IntegrityViolation, InvalidInput, InvalidOrderState, OrderNotFound
from core.events import OrderDelivered
from core.models import (
    DeliveryKind,
    KeyStatus,
    Order,
    OrderLine,
    OrderStatus,
    RevealedKeys,
)
from core.repositories import Repositories
from core.services.fulfilment import transition
from core.vault import clean_text

MAX_MANUAL_CONTENT = 4000


class OrderService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

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
            updated = await transition(
                r,
                order,
                OrderStatus.DELIVERED,
                delivered_at=now,
                membership_expires_at=product.membership_end(now),
            )
            await r.audit.add(
                now, actor, "keys_delivered", product_id=product.id, order_id=order.id, keys=[key_id]
            )
            uow.emit(OrderDelivered(at=now, actor=actor, order=updated, product=product, key_ids=(key_id,)))
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
                ids = [o.id for o in due]
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
            updated = await transition(r, order, OrderStatus.CANCELLED)
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

    # ------------------------------------------------------------------ reading and revealing

    async def get(self, order_ref: str, *, user_id: int | None = None) -> Order:
        async with self.ctx.uow(write=False) as uow:
            order = await uow.repo.orders.by_ref(order_ref)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise OrderNotFound(ref=order_ref)
        return order

    async def for_user(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[Order]:
        return [line.order for line in await self.history(user_id, limit=limit, offset=offset)]

    async def history(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[OrderLine]:
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
            plain = [self.ctx.vault.open_key(k.product_id, k.blind_index, k.ciphertext) for k in sealed]
            await r.orders.mark_revealed(order.id, now)
            await r.audit.add(
                now,
                actor,
                "keys_revealed",
                product_id=order.product_id,
                order_id=order.id,
                keys=[k.id for k in sealed],
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
