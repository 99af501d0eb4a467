"""What every order path shares: guarded transitions, handing over keys, and queueing refunds.

These run inside the caller's unit of work (repositories in, nothing committed here)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from core.errors import IntegrityViolation
from core.models import DeliveryKind, Order, OrderStatus, Product, check_transition
from core.repositories import Repositories

# Outbox message kinds. Payloads carry references, never keys: a key is decrypted when it is sent.
MSG_DELIVERED = "order_delivered"
MSG_AWAITING_MANUAL = "order_awaiting_manual"
MSG_REFUND = "payment_refund"  # the channel pays a charge back to whoever paid it, then tells them


def refund_payload(
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


async def queue_refund(
    r: Repositories,
    payer_id: int,
    provider: str,
    charge_id: str,
    order_ref: str,
    reason: str | None,
    amount: int,
    currency: str,
    now: datetime,
) -> None:
    """The outbox row that pays a charge back. It is addressed to the payer: the channel refunds the
    payer's own charge (Telegram refuses a refund to anyone else) and tells them why."""
    await r.outbox.add(
        payer_id, MSG_REFUND, refund_payload(provider, charge_id, order_ref, reason, amount, currency), now
    )


async def transition(r: Repositories, order: Order, new: OrderStatus, **values: Any) -> Order:
    check_transition(order.status, new)
    updated = await r.orders.set_status(order.id, order.status, new, **values)
    if updated is None:
        raise IntegrityViolation(f"order {order.id} left {order.status} under us")
    return updated


def membership_end(product: Product, delivered_at: datetime) -> datetime | None:
    return delivered_at + timedelta(days=product.validity_days) if product.validity_days else None


async def re_reserve(r: Repositories, order: Order, product: Product) -> bool:
    """A payment arrived for an expired or cancelled order: take stock again if there is any."""
    if product.delivery_kind is DeliveryKind.UNIQUE:
        got = await r.keys.reserve(product.id, order.id, order.quantity)
        if len(got) != order.quantity:
            await r.keys.release_for_orders([order.id])
            return False
    elif product.delivery_kind is DeliveryKind.SHARED:
        return await r.keys.current_shared_key(product.id) is not None
    return True


async def fulfil(r: Repositories, order: Order, product: Product, now: datetime, actor: str) -> Order:
    """Paid: hand over the keys (or queue a manual delivery) and write the buyer's message."""
    if product.delivery_kind is DeliveryKind.MANUAL:
        paid = await transition(r, order, OrderStatus.PAID, paid_at=now)
        await r.outbox.add(order.user_id, MSG_AWAITING_MANUAL, {"order_ref": order.ref}, now)
        return paid
    if product.delivery_kind is DeliveryKind.UNIQUE:
        sold = await r.keys.mark_sold(order.id, now)
        if len(sold) != order.quantity:
            raise IntegrityViolation(f"order {order.id} holds {len(sold)} keys, paid for {order.quantity}")
    else:
        shared = await r.keys.current_shared_key(product.id)
        if shared is None:
            raise IntegrityViolation(f"shared product {product.id} lost its key")
        await r.keys.link_shared(order.id, shared)
        sold = [shared]
    delivered = await transition(
        r,
        order,
        OrderStatus.DELIVERED,
        paid_at=now,
        delivered_at=now,
        membership_expires_at=membership_end(product, now),
    )
    await r.audit.add(now, actor, "keys_delivered", product_id=product.id, order_id=order.id, keys=sold)
    await r.outbox.add(order.user_id, MSG_DELIVERED, {"order_ref": order.ref}, now)
    return delivered
