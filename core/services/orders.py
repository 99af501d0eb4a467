"""Orders: reading them, revealing their keys, manual delivery, expiry and cancellation.

Checkout (``core.services.checkout``), payments (``core.services.payments``) and refunds
(``core.services.refunds``) are services of their own; callers ask them directly.

Every method is one transaction. Every status change is guarded by the status it expects and checks the
row count; a check that fails raises, and the unit of work rolls the whole transaction back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from core.context import Context, UnitOfWork
from core.errors import IntegrityViolation, InvalidInput, InvalidOrderState, OrderNotFound, ShopError
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
        return await self.ctx.write(self._deliver_manually, order_ref, content, actor, self.ctx.clock.now())

    def _deliver_manually(
        self, uow: UnitOfWork, order_ref: str, content: str, actor: str, now: datetime
    ) -> Order:
        vault = self.ctx.vault
        r = uow.repo
        order = self._order_for_update(r, order_ref)
        product = r.catalog.product(order.product_id)
        assert product is not None
        if product.delivery_kind is not DeliveryKind.MANUAL or order.status is not OrderStatus.PAID:
            raise InvalidOrderState(status=str(order.status))
        bidx = vault.blind_index(product.id, f"manual\x00{order.id}")
        key_id = r.keys.add_one(
            product_id=product.id,
            status=KeyStatus.SOLD,
            order_id=order.id,
            kid=vault.current_kid,
            blind_index=bidx,
            ciphertext=vault.encrypt(content, vault.associated_data(product.id, bidx)),
            created_at=now,
            sold_at=now,
        )
        updated = transition(
            r,
            order,
            OrderStatus.DELIVERED,
            delivered_at=now,
            membership_expires_at=product.membership_end(now),
        )
        r.audit.add(now, actor, "keys_delivered", product_id=product.id, order_id=order.id, keys=[key_id])
        uow.emit(OrderDelivered(at=now, actor=actor, order=updated, product=product, key_ids=(key_id,)))
        uow.commit()
        return updated

    # ------------------------------------------------------------------ expiry and cancellation

    async def expire_due(self, *, batch: int = 500) -> int:
        """Expire pending orders past their TTL and return their keys to stock. Returns how many."""
        now = self.ctx.clock.now()
        total = 0
        while True:
            done = await self.ctx.write(_expire_batch, now, batch)
            total += done
            if done < batch:
                return total

    async def cancel(self, order_ref: str, *, user_id: int | None, actor: str) -> Order:
        """The buyer (or an admin, ``user_id=None``) cancels a pending order; its keys return to stock."""
        return await self.ctx.write(self._cancel, order_ref, user_id, actor, self.ctx.clock.now())

    def _cancel(
        self, uow: UnitOfWork, order_ref: str, user_id: int | None, actor: str, now: datetime
    ) -> Order:
        r = uow.repo
        order = self._order_for_update(r, order_ref, user_id=user_id)
        updated = transition(r, order, OrderStatus.CANCELLED)
        released = r.keys.release_for_orders([order.id])
        uow.stock_moved = True
        r.audit.add(
            now,
            actor,
            "order_cancelled",
            product_id=order.product_id,
            order_id=order.id,
            released=released,
        )
        uow.commit()
        return updated

    # ------------------------------------------------------------------ reading and revealing

    async def get(self, order_ref: str, *, user_id: int | None = None) -> Order:
        order = await self.ctx.read(_by_ref, order_ref)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise OrderNotFound(ref=order_ref)
        return order

    async def for_user(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[Order]:
        return [line.order for line in await self.history(user_id, limit=limit, offset=offset)]

    async def history(self, user_id: int, *, limit: int = 10, offset: int = 0) -> list[OrderLine]:
        """The user's orders, newest first, with product names: what "My orders" shows."""
        return await self.ctx.read(_history, user_id, min(max(limit, 1), 100), max(offset, 0))

    async def reveal(self, order_ref: str, *, user_id: int | None, actor: str, reason: str) -> RevealedKeys:
        """Decrypt a delivered order's keys for the buyer (``user_id`` must own it) or an admin
        (``user_id=None``). Every reveal is audited; the first one marks the order as revealed, after
        which a refund voids its keys instead of restocking them."""
        return await self.ctx.write(self._reveal, order_ref, user_id, actor, reason, self.ctx.clock.now())

    async def reveal_many(
        self, requests: Sequence[tuple[str, int | None]], *, actor: str, reason: str
    ) -> dict[str, RevealedKeys | ShopError]:
        """``reveal`` for many orders in one transaction (the outbox sender's deliveries): for each
        ``(order_ref, user_id)``, the keys, or the ShopError that refused that one order alone."""
        return await self.ctx.write(self._reveal_many, requests, actor, reason, self.ctx.clock.now())

    def _reveal_many(
        self,
        uow: UnitOfWork,
        requests: Sequence[tuple[str, int | None]],
        actor: str,
        reason: str,
        now: datetime,
    ) -> dict[str, RevealedKeys | ShopError]:
        out: dict[str, RevealedKeys | ShopError] = {}
        for ref, user_id in sorted(requests, key=lambda rq: rq[0]):  # rows locked in one order everywhere
            try:  # every check comes before the order's own writes: a refusal leaves nothing behind
                out[ref] = self._reveal(uow, ref, user_id, actor, reason, now, commit=False)
            except ShopError as e:
                out[ref] = e
        uow.commit()
        return out

    def _reveal(
        self,
        uow: UnitOfWork,
        order_ref: str,
        user_id: int | None,
        actor: str,
        reason: str,
        now: datetime,
        *,
        commit: bool = True,
    ) -> RevealedKeys:
        r = uow.repo
        found = r.orders.with_product(order_ref[:128])  # the order locked, with its product
        if found is None or (user_id is not None and found[0].user_id != user_id):
            raise OrderNotFound(ref=order_ref)
        order, product = found
        if order.status is not OrderStatus.DELIVERED:
            raise InvalidOrderState(status=str(order.status))
        sealed = r.keys.sealed_for_order(order.id)
        plain = [self.ctx.vault.open_key(k.product_id, k.blind_index, k.ciphertext) for k in sealed]
        r.orders.mark_revealed(order.id, now)
        r.audit.add(
            now,
            actor,
            "keys_revealed",
            product_id=order.product_id,
            order_id=order.id,
            keys=[k.id for k in sealed],
            reason=reason[:32],
        )
        if commit:
            uow.commit()
        return RevealedKeys(dataclasses.replace(order, revealed_at=order.revealed_at or now), product, plain)

    def _order_for_update(self, r: Repositories, order_ref: str, *, user_id: int | None = None) -> Order:
        order = r.orders.by_ref(order_ref, lock=True)
        if order is None or (user_id is not None and order.user_id != user_id):
            raise OrderNotFound(ref=order_ref)
        return order


# ---------------------------------------------------------------- transactions (on the database thread)


def _expire_batch(uow: UnitOfWork, now: datetime, batch: int) -> int:
    """Expire up to ``batch`` due orders; returns how many."""
    r = uow.repo
    due = r.orders.due_to_expire(now, batch)
    if not due:
        return 0
    ids = [o.id for o in due]
    if r.orders.expire(ids) != len(ids):
        raise IntegrityViolation("an order picked for expiry changed under us")
    released = r.keys.release_for_orders(ids)
    uow.stock_moved = True
    for oid in ids:
        r.audit.add(now, "system", "order_expired", order_id=oid)
    if released:
        r.audit.add(now, "system", "keys_released", keys=released, orders=ids)
    uow.commit()
    return len(ids)


def _by_ref(uow: UnitOfWork, order_ref: str) -> Order | None:
    return uow.repo.orders.by_ref(order_ref)


def _history(uow: UnitOfWork, user_id: int, limit: int, offset: int) -> list[OrderLine]:
    return uow.repo.orders.for_user(user_id, limit, offset)
