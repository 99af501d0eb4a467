"""Checkout: the purchase rules and the reservation of stock for a new order.

The rules (blocklist, product on sale, per-buyer and daily limits) are one function, applied at checkout,
again to a payment for a pending order (``refusal_on_time``: blocklisted or taken off sale meanwhile), and
to a payment that arrives late for an expired or cancelled order (``refusal_late``)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from core.context import Context, ShopConfig, UnitOfWork
from core.errors import (
    CurrencyNotAccepted,
    DailyLimitReached,
    IntegrityViolation,
    InvalidInput,
    LimitExceeded,
    OutOfStock,
    PhoneRequired,
    ProductNotFound,
    ProductUnavailable,
    QuantityOutOfRange,
    ShopError,
    TooManyPendingOrders,
    UserBlocklisted,
)
from core.models import STARS, DeliveryKind, Order, OrderStatus, Product, User, UserIdentity
from core.repositories import Repositories
from core.services.catalog import invoice_max, largest_qty
from core.services.fulfilment import re_reserve

# Why a late payment was refused, as the refund reason the buyer reads (``refund-reason-<reason>``).
_REFUSALS: tuple[tuple[type[ShopError], str], ...] = (
    (UserBlocklisted, "blocklisted"),
    (ProductUnavailable, "product_unavailable"),
    (LimitExceeded, "user_limit"),
    (DailyLimitReached, "daily_limit"),
    (OutOfStock, "out_of_stock"),
)


# How many unpaid orders one buyer may hold at a time. Each holds stock for the reservation TTL, so without a
# cap one buyer who never pays (or replays Buy taps) could hold every key while others see "sold out".
MAX_PENDING_ORDERS = 3


def refusal_reason(error: ShopError) -> str:
    return next((reason for cls, reason in _REFUSALS if isinstance(error, cls)), "refused")


def new_order_ref() -> str:
    """An unguessable order reference: 80 random bits, base32, easy to read out to support."""
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii")


def check_purchase_rules(
    r: Repositories, config: ShopConfig, user: User, product: Product, quantity: int, now: datetime
) -> None:
    """May ``user`` buy ``quantity`` of ``product`` now? Raises the ShopError that says why not.

    Call inside a write transaction with the buyer's row locked (PostgreSQL) or the write lock held
    (SQLite), so two purchases of one buyer cannot both slip under a limit."""
    check_buyer_and_product(user, product)
    check_limits(r, config, user, product, quantity, now)


def check_buyer_and_product(user: User, product: Product) -> None:
    if user.blocklisted:
        raise UserBlocklisted()
    if not product.active:
        raise ProductUnavailable(product_id=product.id, name=product.name)


def check_limits(
    r: Repositories, config: ShopConfig, user: User, product: Product, quantity: int, now: datetime
) -> None:
    """The buyer's own limit in its rolling window, and the product's per-day limit."""
    if product.user_limit is not None and product.user_limit_hours is not None:
        since = now - timedelta(hours=product.user_limit_hours)
        used = r.orders.units_since(product.id, since, user_id=user.id)
        if used + quantity > product.user_limit:
            raise LimitExceeded(
                limit=product.user_limit,
                hours=product.user_limit_hours,
                remaining=max(0, product.user_limit - used),
            )
    if product.daily_limit is not None:
        # Serialise purchases of a day-limited product (PostgreSQL); SQLite is serial already.
        r.catalog.product(product.id, lock=True)
        local = now.astimezone(config.timezone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        used = r.orders.units_since(product.id, day_start)
        if used + quantity > product.daily_limit:
            raise DailyLimitReached(limit=product.daily_limit, remaining=max(0, product.daily_limit - used))


def refusal_on_time(r: Repositories, order: Order, product: Product) -> str | None:
    """A payment for a pending order: the buyer may have been blocklisted, or the product taken off sale,
    while the invoice was open. Returns why it must be refunded, or None."""
    user = r.users.get(order.user_id)
    if user is None:
        raise IntegrityViolation(f"order {order.id} has no buyer")
    try:
        check_buyer_and_product(user, product)
    except ShopError as e:
        return refusal_reason(e)
    return None


def refusal_late(
    uow: UnitOfWork, config: ShopConfig, order: Order, product: Product, now: datetime
) -> str | None:
    """A payment for an expired or cancelled order: the purchase rules of checkout apply again, then stock
    is taken again. Returns why it must be refunded, or None when the order can go ahead."""
    r = uow.repo
    user = r.users.get(order.user_id, lock=True)
    if user is None:
        raise IntegrityViolation(f"order {order.id} has no buyer")
    try:
        check_purchase_rules(r, config, user, product, order.quantity, now)
    except ShopError as e:
        return refusal_reason(e)
    if not re_reserve(uow, order, product):
        return "out_of_stock"
    return None


class Checkout(NamedTuple):
    """What a Buy tap came to: the order to pay, whether it was created now (False: an unpaid one was
    reused), and its buyer as the transaction saw them (a newcomer's row made by this checkout)."""

    order: Order
    created: bool
    buyer: User


class CheckoutService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def checkout(
        self, user_id: int | UserIdentity, product_id: int, quantity: int, currency: str
    ) -> Order:
        """The order to pay (see ``checkout_or_reuse``)."""
        return (await self.checkout_or_reuse(user_id, product_id, quantity, currency))[0]

    async def checkout_or_reuse(
        self, user_id: int | UserIdentity, product_id: int, quantity: int, currency: str
    ) -> Checkout:
        """Create a pending order and reserve its stock: exactly ``quantity`` keys or nothing at all.
        Returns the order, whether it was created now (False: an unpaid one was reused) and the buyer.

        A buyer's unpaid order for the same product, quantity and currency whose reservation still has at
        least a third of its time is returned instead (a double tap, or Buy again after losing the invoice,
        holds no more stock); and a buyer holds at most ``MAX_PENDING_ORDERS`` unpaid orders.

        ``user_id`` may be an identity the shop has no row for yet: the row is created in this same
        transaction (and rolled back with it should the checkout be refused)."""
        if type(quantity) is not int:
            raise InvalidInput("quantity must be a whole number", field="quantity")
        await self._sold_out_early(user_id, product_id, quantity, currency)
        done = await self.ctx.write(self._checkout, user_id, product_id, quantity, currency)
        if done.created:
            self.ctx.catalog.reserved(product_id, quantity)
        return done

    def _checkout(
        self, uow: UnitOfWork, who: int | UserIdentity, product_id: int, quantity: int, currency: str
    ) -> Checkout:
        now = self.ctx.clock.now()
        r = uow.repo
        user_id = who if isinstance(who, int) else _create_user(uow, who, now)
        user, product = r.users.with_product(user_id, product_id)
        if user is None:
            raise InvalidInput(f"no user {user_id}", field="user_id")
        if product is None:
            raise ProductNotFound(product_id=product_id)
        check_buyer_and_product(user, product)
        amount = self._price(product, currency) * quantity
        exp = 0 if currency == STARS else self.ctx.config.currency_exponent
        top = largest_qty(product, currency, exp)  # max_qty, or less where one invoice cannot take more
        if not product.min_qty <= quantity <= top or amount > invoice_max(currency, exp):
            raise QuantityOutOfRange(min=product.min_qty, max=top, quantity=quantity)
        if product.requires_phone and not user.phone:
            raise PhoneRequired()
        pending = r.orders.pending_for_user(user_id, now)
        fresh = now + self.ctx.config.reservation_ttl / 3
        for o in pending:
            if (o.product_id, o.quantity, o.currency) == (product_id, quantity, currency) and (
                o.expires_at >= fresh
            ):
                return Checkout(o, False, user)  # nothing written: leaving without commit is fine
        if len(pending) >= MAX_PENDING_ORDERS:
            raise TooManyPendingOrders(count=len(pending))
        check_limits(r, self.ctx.config, user, product, quantity, now)

        order = r.orders.add(
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
            key_ids = r.keys.reserve(product_id, order.id, quantity)
            if len(key_ids) != quantity:
                # Not enough: raising rolls back the partial reservation and the order with it.
                raise OutOfStock(product_id=product_id, name=product.name, available=len(key_ids))
        elif product.delivery_kind is DeliveryKind.SHARED and r.keys.current_shared_key(product_id) is None:
            raise OutOfStock(product_id=product_id, name=product.name, available=0)
        r.audit.add(
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
        uow.commit()
        return Checkout(order, True, user)

    async def _sold_out_early(
        self, who: int | UserIdentity, product_id: int, quantity: int, currency: str
    ) -> None:
        """A flash sale's crowd after the last key: refused from the in-memory catalog, without queueing
        for the writer. Only when the catalog is fresh (stock moved here is counted at once; elsewhere, up
        to its poll interval) and the buyer holds no unpaid order this tap could reuse (a double tap by the
        buyer who took the last key gets their invoice again). The purchase transaction stays the judge of
        every purchase it lets through."""
        cache = self.ctx.catalog
        snapshot = cache.snapshot
        if snapshot is None or cache.needs_check():
            return
        product = snapshot.products.get(product_id)
        if product is None or not product.active or product.delivery_kind is not DeliveryKind.UNIQUE:
            return  # refusals other than stock are the transaction's to give
        available = snapshot.available.get(product_id, 0)
        if available >= quantity:
            return
        if isinstance(who, int):
            now = self.ctx.clock.now()
            pending = await self.ctx.read(_pending_orders, who, now)
            if any(
                (o.product_id, o.quantity, o.currency) == (product_id, quantity, currency) for o in pending
            ):
                return  # the reuse path decides, in the transaction
        raise OutOfStock(product_id=product_id, name=product.name, available=available)

    def _price(self, product: Product, currency: str) -> int:
        unit = product.unit_price(currency, self.ctx.config.currency)
        if unit is None:
            raise CurrencyNotAccepted(currency=currency)
        return unit


def _create_user(uow: UnitOfWork, who: UserIdentity, now: datetime) -> int:
    """The row of a buyer whose first write is this checkout (one that exists already is found)."""
    r = uow.repo
    r.users.insert_if_absent(who.channel, who.external_id, who.language, None, now, who.username)
    user = r.users.get_by_external(who.channel, who.external_id)
    if user is None:
        raise IntegrityViolation(f"user {who.channel}/{who.external_id} vanished")
    return user.id


def _pending_orders(uow: UnitOfWork, user_id: int, now: datetime) -> list[Order]:
    return uow.repo.orders.pending_for_user(user_id, now)
