"""Plain domain objects. Repositories turn table rows into these; services return only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from core.errors import InvalidOrderState

STARS = "XTR"  # Telegram Stars: the ISO-4217-style code Telegram uses


class DeliveryKind(StrEnum):
    UNIQUE = "unique"  # one key from stock per unit, never sold twice
    SHARED = "shared"  # one key given to every buyer (通用卡密)
    MANUAL = "manual"  # an admin fulfils the order by hand (人工发货)


class KeyStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    SOLD = "sold"
    VOID = "void"  # revealed to a buyer whose order was refunded: never sold again
    SHARED = "shared"  # the current shared key of a shared-key product
    RETIRED = "retired"  # a shared key that was replaced; orders that got it still show it


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUND_DUE = "refund_due"
    REFUNDED = "refunded"

    def can_become(self, new: OrderStatus) -> bool:
        """May an order go from this status to ``new`` (``ORDER_TRANSITIONS``)?"""
        return new in ORDER_TRANSITIONS[self]


class PaymentStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # amount/currency/order did not match: recorded, nothing delivered
    REFUND_DUE = "refund_due"  # money taken that the shop must give back
    REFUNDED = "refunded"


# The reason of a charge for an order that was paid already: owed back from the start, never accepted.
ALREADY_PAID = "already_paid"
# The reasons of a charge that pays for nothing the shop sells, rejected and owed back from the start: no
# such order, a payer who does not own it (a forwarded invoice), another amount or currency.
UNKNOWN_ORDER, NOT_OWNER, AMOUNT_MISMATCH = "unknown_order", "not_owner", "amount_mismatch"
# A charge with one of these reasons never paid for its order, whatever its status became since (a charge
# paid back ends ``refunded`` like an order's own charge after the order's refund).
NEVER_KEPT = frozenset({ALREADY_PAID, UNKNOWN_ORDER, NOT_OWNER, AMOUNT_MISMATCH})

# The order state machine. Every UPDATE of orders.status is guarded by the old status and checks the
# row count, so a transition that lost a race changes nothing.
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # A payment the rules refuse on time (buyer blocklisted, product taken off sale since checkout) -> refund.
    OrderStatus.PENDING: frozenset(
        {
            OrderStatus.PAID,
            OrderStatus.DELIVERED,
            OrderStatus.EXPIRED,
            OrderStatus.CANCELLED,
            OrderStatus.REFUND_DUE,
        }
    ),
    # A late payment for an expired or cancelled order re-reserves (-> paid/delivered) or is refunded.
    OrderStatus.EXPIRED: frozenset({OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.REFUND_DUE}),
    OrderStatus.CANCELLED: frozenset({OrderStatus.PAID, OrderStatus.DELIVERED, OrderStatus.REFUND_DUE}),
    OrderStatus.PAID: frozenset({OrderStatus.DELIVERED, OrderStatus.REFUND_DUE}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.REFUND_DUE}),
    OrderStatus.REFUND_DUE: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.REFUNDED: frozenset(),
}

# States in which an order counts against purchase limits.
LIMIT_COUNTED_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.DELIVERED})


def check_transition(old: OrderStatus, new: OrderStatus) -> None:
    if not old.can_become(new):
        raise InvalidOrderState(
            f"order cannot go from {old} to {new}", status=str(old), old=str(old), new=str(new)
        )


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """Someone a channel knows who may not be a shop user yet: their row is created inside the first
    write that needs it (a checkout, a language choice), never just for looking around."""

    channel: str
    external_id: str
    language: str | None = None
    username: str | None = None  # the channel's public handle, lower case, without "@"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    channel: str
    external_id: str
    language: str | None
    language_chosen: bool  # picked with /language; else the channel's current language is followed
    phone: str | None
    blocklisted: bool
    bot_blocked: bool
    referrer_id: int | None
    created_at: datetime
    username: str | None = None  # as last seen on the channel (lower case, without "@")


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    name: str
    description: str
    position: int
    active: bool


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    category_id: int | None
    name: str
    description: str
    price: int  # integer minor units of SHOP_CURRENCY
    price_stars: int  # Telegram Stars
    active: bool
    delivery_kind: DeliveryKind
    validity_days: int | None
    min_qty: int
    max_qty: int
    low_stock_threshold: int
    user_limit: int | None  # units per user within user_limit_hours
    user_limit_hours: int | None
    daily_limit: int | None  # units per product per shop-local calendar day
    requires_phone: bool
    created_at: datetime
    # Basis points per commission level for this product, overriding COMMISSION_RATES (``rates_for``);
    # None: the shop's rates.
    commission_rates: tuple[int, ...] | None = None

    def unit_price(self, currency: str, shop_currency: str) -> int | None:
        """The price of one unit in ``currency`` (Stars, or the shop's currency), or None when the product
        is not sold in it."""
        if currency == STARS:
            unit = self.price_stars
        elif currency == shop_currency:
            unit = self.price
        else:
            return None
        return unit if unit > 0 else None

    def membership_end(self, delivered_at: datetime) -> datetime | None:
        """When a membership code delivered at ``delivered_at`` expires (None: it does not)."""
        return delivered_at + timedelta(days=self.validity_days) if self.validity_days else None


@dataclass(frozen=True, slots=True)
class StockLevel:
    product_id: int
    product_name: str
    delivery_kind: DeliveryKind
    available: int
    reserved: int
    sold: int
    void: int
    low_stock_threshold: int

    @property
    def is_low(self) -> bool:
        return self.delivery_kind is DeliveryKind.UNIQUE and self.available <= self.low_stock_threshold


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    ref: str
    user_id: int
    product_id: int
    quantity: int
    currency: str
    amount: int
    status: OrderStatus
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    delivered_at: datetime | None
    revealed_at: datetime | None
    membership_expires_at: datetime | None
    # The commission rate per level (basis points) its delivery applied, 0 where nobody earned (a blocked
    # distributor, a rate of 0); None: no referrer chain, or delivered before rates were recorded.
    commission_rates: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """Money a payment provider reports as taken: who paid (our user id, None when unknown) how much,
    for which order reference."""

    provider: str
    charge_id: str
    order_ref: str
    amount: int
    currency: str
    payer_id: int | None
    earns_commission: bool = False  # an admin's "mark paid" they chose to pay commission on


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """What a channel needs to know after reporting a payment."""

    outcome: PaymentStatus
    order: Order | None
    replay: bool  # True when this (provider, charge id) had been seen before: nothing changed
    reason: str | None = None  # why a payment was rejected or must be refunded

    @property
    def must_refund(self) -> bool:
        return self.outcome in (PaymentStatus.REFUND_DUE, PaymentStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class InvalidLine:
    line: int
    reason: str  # blank | too_long | control | bidi | undecodable | malformed


@dataclass(slots=True)
class ImportReport:
    product_id: int
    import_id: int
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    lines: int = 0
    invalid_samples: list[InvalidLine] = field(default_factory=list)
    sample_limit: int = 100  # how many invalid lines are kept with their numbers (all are counted)

    def reject(self, line: int, reason: str) -> None:
        self.invalid += 1
        if len(self.invalid_samples) < self.sample_limit:
            self.invalid_samples.append(InvalidLine(line, reason))


@dataclass(frozen=True, slots=True)
class RevealedKeys:
    order: Order
    product: Product
    keys: list[str]


# ---------------------------------------------------------------- records read back by the repositories


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of a buyer's order history: the order and the name of what was bought."""

    order: Order
    product_name: str


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    provider: str
    charge_id: str
    order_id: int | None  # None: the charge named no order we know
    order_ref: str
    payer_id: int | None  # whoever paid; a refund goes back to them (None only on legacy rows)
    amount: int
    currency: str
    status: PaymentStatus
    reason: str | None
    created_at: datetime
    refunded_at: datetime | None
    # A manual payment ("mark paid") whose order earns commission, as the admin chose; other providers'
    # payments always do.
    earns_commission: bool = False


@dataclass(frozen=True, slots=True)
class OwedPayment:
    """A payment the shop owes back (``refund_due``, or a rejected charge): what paying it back needs."""

    provider: str
    charge_id: str
    amount: int
    currency: str
    payer_id: int | None


@dataclass(frozen=True, slots=True)
class PaymentNotice:
    """A payment notice as a channel received it, kept until it has been processed."""

    id: int
    provider: str
    charge_id: str
    payer_id: int | None
    order_ref: str
    amount: int
    currency: str
    raw: dict[str, object]  # the notice as received (JSON)
    status: str  # pending | done
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A key as stored: encrypted, bound to its product and blind index."""

    id: int
    product_id: int
    blind_index: bytes
    ciphertext: bytes


class AccountKind(StrEnum):
    """What a ledger account holds. The shop's (no owner): ``commission_expense``, what commissions cost
    it. A distributor's: ``pending`` (in the holding period), ``available`` (theirs to spend or withdraw;
    may go negative after a clawback), ``spent`` (used as shop balance), ``withdrawing`` (asked to be paid
    out, waiting for an admin), ``paid_out`` (withdrawn)."""

    COMMISSION_EXPENSE = "commission_expense"
    PENDING = "pending"
    AVAILABLE = "available"
    SPENT = "spent"
    WITHDRAWING = "withdrawing"
    PAID_OUT = "paid_out"


class CommissionStatus(StrEnum):
    PENDING = "pending"  # in the holding period
    AVAILABLE = "available"  # settled
    REVERSED = "reversed"  # the order was refunded while it was pending
    CLAWED_BACK = "clawed_back"  # the order was refunded after it was settled


@dataclass(frozen=True, slots=True)
class Commission:
    id: int
    order_id: int
    level: int  # 1: the buyer's referrer, 2: that referrer's referrer
    beneficiary_id: int
    base: int  # the amount paid it was computed on (minor units, Stars whole)
    rate_bp: int  # basis points: 1000 = 10 %
    amount: int
    currency: str
    status: CommissionStatus
    due_at: datetime
    created_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Balance:
    owner_id: int | None  # None: the shop
    kind: AccountKind
    currency: str
    amount: int


def commission_amounts(base: int, rates_bp: tuple[int, ...]) -> tuple[int, ...]:
    """Commission per level on ``base`` (integer minor units; Stars whole): ``base × rate`` rounded down
    to the minor unit, level by level; what the rounding leaves is the shop's. Integers only, never
    floats."""
    if base < 0:
        raise ValueError("a commission base cannot be negative")
    return tuple(base * rate // 10_000 for rate in rates_bp)


class PayoutStatus(StrEnum):
    REQUESTED = "requested"  # the distributor asked; their money waits in ``withdrawing``
    APPROVED = "approved"  # an admin agreed to pay it (no money moved)
    PAID = "paid"  # an admin paid it outside the chat (with a reference): ``paid_out``
    REJECTED = "rejected"  # an admin refused it (with a reason): back to ``available``


OPEN_PAYOUT = (PayoutStatus.REQUESTED, PayoutStatus.APPROVED)


@dataclass(frozen=True, slots=True)
class Payout:
    """A distributor's withdrawal request: ``amount`` of the ledger currency ``currency`` leaves their
    available balance; the admin pays ``payout_amount`` of ``payout_currency`` (the shop currency).
    ``details`` is what the distributor typed (where to pay them): personal data, never logged."""

    id: int
    user_id: int
    currency: str
    amount: int
    payout_amount: int
    payout_currency: str
    details: str
    status: PayoutStatus
    request_key: str
    reference: str | None
    reason: str | None
    decided_by: str | None
    paid_by: str | None
    created_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None

    @property
    def open(self) -> bool:
        return self.status in OPEN_PAYOUT


def payout_value(amount: int, currency: str, shop_currency: str, stars_rate: int) -> int | None:
    """What withdrawing ``amount`` of ``currency`` pays, in shop-currency minor units: the same amount of
    the shop currency; Stars times ``stars_rate`` (minor units per Star), or None when the rate is 0 (Stars
    are then only spent); None for any other currency (commissions earned before the shop currency
    changed: spent, not withdrawn). Integers only."""
    if currency == shop_currency:
        return amount
    if currency == STARS and stars_rate > 0:
        return amount * stars_rate
    return None
