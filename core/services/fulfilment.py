"""What every order path shares: guarded transitions, taking stock again, and handing over keys.

These run inside the caller's unit of work (nothing committed here). What the buyer is told, and any other
reaction, follows from the events emitted here (``core.reactions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import IntegrityViolation
from core.events import OrderDelivered, OrderPaid
from core.models import DeliveryKind, Order, OrderStatus, Product, check_transition
from core.repositories import Repositories
from core.uow import UnitOfWork


def transition(r: Repositories, order: Order, new: OrderStatus, **values: Any) -> Order:
    check_transition(order.status, new)
    updated = r.orders.set_status(order.id, order.status, new, **values)
    if updated is None:
        raise IntegrityViolation(f"order {order.id} left {order.status} under us")
    return updated


def re_reserve(uow: UnitOfWork, order: Order, product: Product) -> bool:
    """A payment arrived for an expired or cancelled order: take stock again if there is any."""
    r = uow.repo
    if product.delivery_kind is DeliveryKind.UNIQUE:
        uow.stock_moved = True
        got = r.keys.reserve(product.id, order.id, order.quantity)
        if len(got) != order.quantity:
            r.keys.release_for_orders([order.id])
            return False
    elif product.delivery_kind is DeliveryKind.SHARED:
        return r.keys.current_shared_key(product.id) is not None
    return True


def fulfil(uow: UnitOfWork, order: Order, product: Product, now: datetime, actor: str) -> Order:
    """Paid: hand over the keys, or leave the order ``paid`` for an admin (manual delivery).

    Emits ``OrderPaid``, and ``OrderDelivered`` when the keys were handed over."""
    r = uow.repo
    if product.delivery_kind is DeliveryKind.MANUAL:
        paid = transition(r, order, OrderStatus.PAID, paid_at=now)
        uow.emit(OrderPaid(at=now, actor=actor, order=paid, product=product))
        return paid
    if product.delivery_kind is DeliveryKind.UNIQUE:
        sold = r.keys.mark_sold(order.id, now)
        if len(sold) != order.quantity:
            raise IntegrityViolation(f"order {order.id} holds {len(sold)} keys, paid for {order.quantity}")
    else:
        shared = r.keys.current_shared_key(product.id)
        if shared is None:
            raise IntegrityViolation(f"shared product {product.id} lost its key")
        r.keys.link_shared(order.id, shared)
        sold = [shared]
    delivered = transition(
        r,
        order,
        OrderStatus.DELIVERED,
        paid_at=now,
        delivered_at=now,
        membership_expires_at=product.membership_end(now),
    )
    r.audit.add(now, actor, "keys_delivered", product_id=product.id, order_id=order.id, keys=sold)
    uow.emit(OrderPaid(at=now, actor=actor, order=delivered, product=product))
    uow.emit(OrderDelivered(at=now, actor=actor, order=delivered, product=product, key_ids=tuple(sold)))
    return delivered
