"""A payment an admin received outside the chat ("mark paid"): checked against the order, turned into a
charge of the ``manual`` provider, and confirmed through the one idempotent confirmation (``charges``).

One charge per order (``manual:<order ref>``), so a replayed "mark paid" changes nothing; the admin and
their note are audited. Such an order earns the distributors no commission unless the admin chose "with
commission" (``earns_commission`` on the payment, audited too; ``core.ledger.commission_base``). Runs on
a database thread; ``PaymentService.confirm_manual`` owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.context import ShopConfig
from core.errors import ManualAmountMismatch, OrderNotFound
from core.models import Charge, Order, PaymentResult, Product
from core.services.charges import confirm
from core.uow import UnitOfWork

MANUAL = "manual"  # the provider of a payment an admin received outside the chat ("mark paid")

Guard = Callable[[Order, Product], None]


def confirm_manual(
    uow: UnitOfWork,
    now: datetime,
    config: ShopConfig,
    order_ref: str,
    amount: int,
    note: str,
    actor: str,
    guard: Guard | None,
    with_commission: bool = False,
) -> PaymentResult:
    """Confirm ``amount`` received for ``order_ref`` by ``actor`` (``with_commission``: the order earns
    commission like a paid one); ``guard(order, product)``, run with the order locked, may refuse. An
    amount that is not the order's records nothing."""
    r = uow.repo
    found = r.orders.with_product(order_ref[:128])  # the order locked, as confirm takes it
    if found is None:
        raise OrderNotFound(ref=order_ref)
    order, product = found
    if guard is not None:
        guard(order, product)
    if amount != order.amount:
        raise ManualAmountMismatch(expected=order.amount, currency=order.currency)
    charge = Charge(
        MANUAL, f"{MANUAL}:{order.ref}", order.ref, amount, order.currency, order.user_id, with_commission
    )
    result = confirm(uow, config, now, charge)
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
            commission=with_commission,
            outcome=str(result.outcome),
        )
    return result
