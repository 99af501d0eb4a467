"""The ledger's rules, run inside other services' transactions: writing a balanced posting, posting the
commissions of a delivered order, and undoing them when it is refunded.

Every posting is a set of entries summing to zero per currency (refused otherwise, rolling the transaction
back) and carries a unique key, so a replayed event posts nothing twice. Balances are sums of entries;
no balance is ever read in Python, changed and written back.

A commission is posted when an order is delivered (a reaction to ``OrderDelivered``, in the delivery's
transaction): per level, the level's rate (``rates_for``: the product's own rates, else the earning
distributor's override, else ``COMMISSION_RATES``) times the amount the order's payments actually brought
in, rounded down to the currency's minor unit (Stars whole); the shop keeps what rounding leaves. A
blocklisted or blocked distributor earns none (the level above them still does). None is paid on an order
an admin marked paid unless they chose "with commission" (``commission_base``). The rates applied are kept
on the order, so ``keyshop ledger check`` can tell a missing commission from one nobody earned. A commission
waits in the distributor's ``pending`` account for the holding period, then ``settle`` moves it to
``available``. A refund before that reverses it; after, a clawback takes it back from ``available``
(which may go negative and is netted against later commissions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.events import OrderDelivered, OrderRefundRequested
from core.models import (
    AccountKind,
    Commission,
    CommissionStatus,
    Order,
    Payment,
    PaymentStatus,
    User,
    commission_amounts,
)
from core.rates import MAX_COMMISSION_LEVELS, WHOLE_BP

if TYPE_CHECKING:
    from core.uow import UnitOfWork

# The provider of an admin's "mark paid" (core.services.manual_payments.MANUAL, which imports the services
# package and so cannot be imported here): such an order earns no commission unless the admin chose so.
MANUAL = "manual"
DEFAULT_RATES_BP = (1000, 500)  # 10 % to the buyer's referrer, 5 % to theirs
DEFAULT_HOLD = timedelta(days=7)

# (owner id or None for the shop, kind, signed amount, currency)
Leg = tuple[int | None, AccountKind, int, str]


class UnbalancedPosting(ValueError):
    """A posting whose entries do not sum to zero in every currency: a bug, never written."""


def post(
    uow: UnitOfWork,
    key: str,
    kind: str,
    legs: Sequence[Leg],
    at: datetime,
    *,
    order_id: int | None = None,
    actor: str = "system",
) -> bool:
    """Write one balanced posting (refused with ``UnbalancedPosting`` otherwise) unless ``key`` was
    posted before. True if written now."""
    totals: dict[str, int] = defaultdict(int)
    for _owner, _kind, amount, currency in legs:
        totals[currency] += amount
    if not legs or any(totals.values()):
        raise UnbalancedPosting(f"posting {key} does not sum to zero: {dict(totals)}")
    r = uow.repo.ledger
    entries = [(r.account(owner, k, currency, at), amount, currency) for owner, k, amount, currency in legs]
    return r.add_posting(key, kind, order_id, actor, at, entries)


def posting_key(c: Commission, kind: str) -> str:
    """The unique key of a commission's posting of ``kind`` (commission, reversal, settlement, clawback):
    the commission's is per order and level, the later ones per commission."""
    return f"commission:{c.order_id}:{c.level}" if kind == "commission" else f"{kind}:{c.id}"


def _move(
    c: Commission, source: tuple[int | None, AccountKind], target: tuple[int | None, AccountKind]
) -> list[Leg]:
    return [(source[0], source[1], -c.amount, c.currency), (target[0], target[1], c.amount, c.currency)]


SHOP_EXPENSE = (None, AccountKind.COMMISSION_EXPENSE)


def rates_for(
    product: tuple[int, ...] | None,
    distributor: tuple[int, ...] | None,
    defaults: tuple[int, ...],
    level: int,
) -> int:
    """The commission rate (basis points) at ``level`` (1: the buyer's referrer): the product's own rates
    if it has them, else the distributor's (the one who earns at that level), else ``COMMISSION_RATES``.
    The first of these that is set decides the level, and a level it names no rate for earns nothing: a
    product's ``0`` means no commission on it at all."""
    rates = product if product is not None else distributor if distributor is not None else defaults
    return rates[level - 1] if 1 <= level <= len(rates) else 0


def capped(rates: Iterable[int]) -> tuple[int, ...]:
    """The levels' rates cut so that together they never pass 100 %: two distributors' overrides (one
    earning at level 1, the other at level 2) could add up to more than the order brought in."""
    out: list[int] = []
    for rate in rates:
        out.append(max(0, min(rate, WHOLE_BP - sum(out))))
    return tuple(out)


def referrer_chain(
    get: Callable[[int], User | None], buyer: User, levels: int = MAX_COMMISSION_LEVELS
) -> list[User]:
    """Who earns at each level of ``buyer``'s purchase: their referrer, that one's referrer, up to
    ``levels``. It ends at an unknown user or one already in it (a loop: nobody earns on their own purchase
    or twice on one order)."""
    chain: list[User] = []
    seen, user = {buyer.id}, buyer
    while len(chain) < levels and user.referrer_id is not None and user.referrer_id not in seen:
        found = get(user.referrer_id)
        if found is None:
            break
        chain.append(found)
        seen.add(found.id)
        user = found
    return chain


def commission_base(order: Order, accepted: Sequence[Payment]) -> int | None:
    """What ``accepted`` (the payments the order was delivered on) brought in, in the order's currency:
    what its commissions are computed on. None when the order earns none: nothing was paid, or an admin
    marked it paid without choosing "with commission"."""
    if not accepted or any(p.provider == MANUAL and not p.earns_commission for p in accepted):
        return None
    return sum(p.amount for p in accepted if p.currency == order.currency)


@dataclass(frozen=True, slots=True)
class CommissionRules:
    """``rates_bp``: basis points per level (``COMMISSION_RATES``); ``hold``: the holding period
    (``COMMISSION_HOLD_DAYS``). Its methods are the reactions ``core.reactions`` registers."""

    rates_bp: tuple[int, ...] = DEFAULT_RATES_BP
    hold: timedelta = DEFAULT_HOLD

    def post_commissions(self, uow: UnitOfWork, e: OrderDelivered) -> None:
        """Commission per level on what the order's payments brought in, to the buyer's referrer chain, at
        each level's rate (``rates_for``): none on an order an admin marked paid without commission, none to
        a blocklisted or blocked distributor (the level above them still earns), to the buyer themself or
        twice to one person; never twice for one order and level, never more in all than was paid. The
        rates applied (0 where nobody earned) are kept on the order."""
        r = uow.repo
        order = e.order
        user = r.users.get(order.user_id)
        if user is None or user.referrer_id is None:
            return  # most buyers came by themselves: one read, nothing more on the purchase path
        accepted = [p for p in r.payments.for_order(order.id) if p.status == PaymentStatus.ACCEPTED]
        base = commission_base(order, accepted)
        if base is None:
            return
        chain = referrer_chain(r.users.get, user)
        if not chain:
            return
        # A blocklisted or blocked distributor's share stays the shop's; the chain goes on above them.
        terms = [r.distributors.terms(b.id) for b in chain]
        rates = capped(
            0
            if b.blocklisted or (t is not None and t.blocked)
            else rates_for(e.product.commission_rates, t.rates if t else None, self.rates_bp, level)
            for level, (b, t) in enumerate(zip(chain, terms, strict=True), start=1)
        )
        if not r.orders.set_commission_rates(order.id, rates):
            return  # a replayed delivery: its rates (and commissions) were kept the first time
        for level, (b, rate) in enumerate(zip(chain, rates, strict=True), start=1):
            (amount,) = commission_amounts(base, (rate,))
            if amount <= 0:
                continue
            added = r.ledger.add_commission(
                order_id=order.id,
                level=level,
                beneficiary_id=b.id,
                base=base,
                rate_bp=rate,
                amount=amount,
                currency=order.currency,
                status=CommissionStatus.PENDING.value,
                due_at=e.at + self.hold,
                created_at=e.at,
            )
            if added is None:
                continue  # posted before (a replay)
            legs: list[Leg] = [
                (None, AccountKind.COMMISSION_EXPENSE, -amount, order.currency),
                (b.id, AccountKind.PENDING, amount, order.currency),
            ]
            post(
                uow,
                f"commission:{order.id}:{level}",
                "commission",
                legs,
                e.at,
                order_id=order.id,
                actor=e.actor,
            )

    def take_back_commissions(self, uow: UnitOfWork, e: OrderRefundRequested) -> None:
        """The order is being refunded: pending commissions are reversed, settled ones clawed back from
        the distributor's available balance (which may go negative)."""
        r = uow.repo.ledger
        oid = e.order.id
        for c in r.move_order_commissions(oid, CommissionStatus.PENDING, CommissionStatus.REVERSED):
            legs = _move(c, (c.beneficiary_id, AccountKind.PENDING), SHOP_EXPENSE)
            post(uow, posting_key(c, "reversal"), "reversal", legs, e.at, order_id=oid, actor=e.actor)
        for c in r.move_order_commissions(oid, CommissionStatus.AVAILABLE, CommissionStatus.CLAWED_BACK):
            legs = _move(c, (c.beneficiary_id, AccountKind.AVAILABLE), SHOP_EXPENSE)
            post(uow, posting_key(c, "clawback"), "clawback", legs, e.at, order_id=oid, actor=e.actor)


def settle_due(uow: UnitOfWork, now: datetime, limit: int) -> list[Commission]:
    """Claim up to ``limit`` commissions whose holding period ended and move each from pending to
    available, in this transaction. Returns those settled now."""
    r = uow.repo.ledger
    claimed = r.claim_due(now, limit)
    # A distributor's available account is made by their first settlement. Two settlements making the
    # same new accounts in different orders would wait on each other's (a deadlock on PostgreSQL): made
    # here in one order first.
    for owner, currency in sorted({(c.beneficiary_id, c.currency) for c in claimed}):
        r.account(owner, AccountKind.AVAILABLE, currency, now)
    for c in claimed:
        legs = _move(c, (c.beneficiary_id, AccountKind.PENDING), (c.beneficiary_id, AccountKind.AVAILABLE))
        post(uow, posting_key(c, "settlement"), "settlement", legs, now, order_id=c.order_id)
    return claimed


@dataclass(frozen=True, slots=True)
class Drift:
    """Something in the ledger that breaks its rules, said in one line."""

    what: str


def check(uow: UnitOfWork) -> list[Drift]:
    """Every rule the ledger keeps, checked against what is stored: postings sum to zero per currency,
    entries are in their account's currency, and each distributor's pending balance, and what was
    settled to them (available, spent, withdrawing and paid out together), are what their commissions say.
    Empty when clean (``keyshop ledger check`` will print the rest)."""
    r = uow.repo.ledger
    drift = [
        Drift(f"posting {u.posting_id} ({u.key}) sums to {u.total} {u.currency}") for u in r.unbalanced()
    ]
    drift += [
        Drift(
            f"entry {m.entry_id} of posting {m.posting_id} is in {m.currency},"
            f" its account in {m.account_currency}"
        )
        for m in r.misfiled()
    ]
    # Settled money stays the distributor's wherever it went since (available, spent, being withdrawn,
    # paid out).
    bucket = {
        AccountKind.PENDING: "pending",
        AccountKind.AVAILABLE: "settled",
        AccountKind.SPENT: "settled",
        AccountKind.WITHDRAWING: "settled",
        AccountKind.PAID_OUT: "settled",
    }
    expected: dict[tuple[int, str, str], int] = defaultdict(int)
    held: dict[tuple[int, str, str], int] = defaultdict(int)
    for b in r.commission_totals():
        if b.owner_id is not None:
            expected[(b.owner_id, bucket[b.kind], b.currency)] += b.amount
    for b in r.balances():
        if b.owner_id is not None and b.kind in bucket:
            held[(b.owner_id, bucket[b.kind], b.currency)] += b.amount
    for key in sorted(set(expected) | set(held)):
        want, have = expected.get(key, 0), held.get(key, 0)
        if want != have:
            owner, what, currency = key
            drift.append(
                Drift(f"user {owner} {what} {currency}: entries sum to {have}, commissions to {want}")
            )
    return drift
