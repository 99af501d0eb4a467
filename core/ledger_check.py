"""What ``keyshop ledger check`` verifies: the ledger's own sums (``core.ledger.check``), and that every
order's commissions are what the commission rules (``core.ledger``) say, given what is stored. All of it
is read in one snapshot, the orders a page at a time.

Per order:

- An order never delivered has no commission. A delivered one's are pending or available; once it is
  being refunded, or refunded, they are reversed or clawed back.
- Each commission is in the order's currency and goes to the buyer's referrer at its level (never to the
  buyer, nobody twice: ``referrer_chain``). Its base is what the payments the order was delivered on
  brought in (``paid_for``), and none exists on an order an admin marked paid without commission. Its
  amount is ``floor(base × rate_bp / 10000)`` with the rate it records, which is the rate its delivery
  applied (kept on the order).
- Its postings are those of its status, each moving its amount between the right accounts: pending, the
  commission posting; reversed, that and a reversal; available, that and a settlement; clawed back, a
  settlement and a clawback as well. A posting about the order that belongs to none of its commissions
  is drift too.
- A delivered order whose buyer has a referrer chain has a commission at every level where the rate its
  delivery applied gives a positive amount. For an order delivered before the rates were kept on orders,
  today's rates stand in, and a commission missing for a distributor blocklisted now is let pass (they may
  have been blocklisted then): the one place where the check is lenient.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from core.ledger import Drift, check, commission_base, posting_key, rates_for, referrer_chain
from core.models import (
    NEVER_KEPT,
    AccountKind,
    Commission,
    CommissionStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
    User,
    commission_amounts,
)
from core.rates import MAX_COMMISSION_LEVELS, WHOLE_BP
from core.repositories.ledger import PostingLeg

if TYPE_CHECKING:
    from core.repositories.users import UserRepo
    from core.uow import UnitOfWork

PAGE = 500  # orders read at a time
Progress = Callable[[int, int], None]  # (orders checked so far, orders in all)

_T = TypeVar("_T")
_REFUNDING = frozenset({OrderStatus.REFUND_DUE, OrderStatus.REFUNDED})
_DELIVERED = _REFUNDING | {OrderStatus.DELIVERED}
_KEPT = frozenset({CommissionStatus.PENDING, CommissionStatus.AVAILABLE})
KINDS = ("commission", "reversal", "settlement", "clawback")  # a commission's postings
_POSTINGS = {  # the postings a commission has in each status
    CommissionStatus.PENDING: {"commission"},
    CommissionStatus.REVERSED: {"commission", "reversal"},
    CommissionStatus.AVAILABLE: {"commission", "settlement"},
    CommissionStatus.CLAWED_BACK: {"commission", "settlement", "clawback"},
}
_EXPENSE, _PENDING, _AVAILABLE = AccountKind.COMMISSION_EXPENSE, AccountKind.PENDING, AccountKind.AVAILABLE
_MOVES = {  # where each posting moves a commission's amount from, and to
    "commission": (_EXPENSE, _PENDING),
    "reversal": (_PENDING, _EXPENSE),
    "settlement": (_PENDING, _AVAILABLE),
    "clawback": (_AVAILABLE, _EXPENSE),
}


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the check knows of one order."""

    order: Order
    product: Product | None
    payments: Sequence[Payment]
    chain: Sequence[User]  # the buyer's referrer chain (``referrer_chain``)
    commissions: Sequence[Commission]
    legs: Sequence[PostingLeg]  # the entries of the postings about the order


def paid_for(order: Order, payments: Sequence[Payment]) -> int | None:
    """``commission_base`` of the payments the order was delivered on: its accepted ones, or, once it is
    being refunded, those the refund owes back (a charge owed back from its confirmation on, on an order
    already paid or refused as paying for something else, someone else's, was never counted; paid back,
    it is ``refunded`` as well)."""
    if order.status in _REFUNDING:
        owed = (PaymentStatus.REFUND_DUE, PaymentStatus.REFUNDED)
        kept = [p for p in payments if p.status in owed and p.reason not in NEVER_KEPT]
    else:
        kept = [p for p in payments if p.status == PaymentStatus.ACCEPTED]
    return commission_base(order, kept)


def _applied(order: Order, level: int) -> int | None:
    """The rate the order's delivery applied at ``level``, if it was kept."""
    rates = order.commission_rates
    if rates is None:
        return None
    return rates[level - 1] if level <= len(rates) else 0


def order_drift(f: OrderFacts, defaults: tuple[int, ...]) -> list[Drift]:
    """How the order's commissions and their postings break the rules; empty when they keep them."""
    o = f.order
    base = paid_for(o, f.payments) if o.status in _DELIVERED and o.delivered_at is not None else None
    out = [d for c in f.commissions for d in _commission_drift(f, c, base)]
    if base is not None:
        out += _missing(f, base, defaults)
    return out + _posting_drift(f)


def _commission_drift(f: OrderFacts, c: Commission, base: int | None) -> list[Drift]:
    o, at = f.order, f"order {f.order.ref} level {c.level}"
    if o.status not in _DELIVERED or o.delivered_at is None:
        return [Drift(f"{at}: a commission on an order never delivered ({o.status})")]
    out: list[str] = []
    if o.status in _REFUNDING and c.status in _KEPT:
        out.append(f"{at}: {c.status}, but the order is {o.status}")
    elif o.status is OrderStatus.DELIVERED and c.status not in _KEPT:
        out.append(f"{at}: {c.status}, but the order was not refunded")
    if c.currency != o.currency:
        out.append(f"{at}: in {c.currency}, the order in {o.currency}")
    chain = [u.id for u in f.chain]
    if c.beneficiary_id == o.user_id:
        out.append(f"{at}: to the buyer themself (user {o.user_id})")
    elif not 1 <= c.level <= len(chain):
        out.append(f"{at}: to user {c.beneficiary_id}, but the buyer's referrer chain has no level {c.level}")
    elif chain[c.level - 1] != c.beneficiary_id:
        want = chain[c.level - 1]
        out.append(f"{at}: to user {c.beneficiary_id}, the buyer's referrer there is user {want}")
    if base is None:
        out.append(f"{at}: the order earns no commission (nothing paid, or marked paid without commission)")
    elif c.base != base:
        out.append(f"{at}: base {c.base}, but the order's payments brought in {base} {o.currency}")
    applied = _applied(o, c.level)
    if applied is not None and c.rate_bp != applied:
        out.append(f"{at}: rate {c.rate_bp} bp, but its delivery applied {applied} bp")
    on = base if base is not None else c.base
    if not 0 <= c.rate_bp <= WHOLE_BP or on < 0:
        out.append(f"{at}: rate {c.rate_bp} bp on {on} is not a commission")
    elif c.amount <= 0:
        out.append(f"{at}: a commission of {c.amount} {c.currency}")
    else:
        (want_amount,) = commission_amounts(on, (c.rate_bp,))
        if c.amount != want_amount:
            rule = f"floor({on} × {c.rate_bp} / 10000) is {want_amount}"
            out.append(f"{at}: amount {c.amount} {c.currency}, but {rule}")
    return [Drift(d) for d in out]


def _missing(f: OrderFacts, base: int, defaults: tuple[int, ...]) -> list[Drift]:
    """The levels where a commission is owed and none exists."""
    o, out = f.order, []
    have = {c.level for c in f.commissions}
    own = f.product.commission_rates if f.product is not None else None
    for level, b in enumerate(f.chain, start=1):
        if level in have:
            continue
        rate = _applied(o, level)
        if rate is None:  # delivered before the rates were kept: today's, lenient on the blocklisted
            if b.blocklisted:
                continue
            rate = rates_for(own, None, defaults, level)
        (amount,) = commission_amounts(base, (rate,))
        if amount > 0:
            out.append(
                Drift(
                    f"order {o.ref} level {level}: no commission, but {amount} {o.currency} is owed"
                    f" to user {b.id} ({rate} bp of {base})"
                )
            )
    return out


def _posting_drift(f: OrderFacts) -> list[Drift]:
    """Each commission has the postings of its status, each moving its amount as its kind does; every
    commission posting about the order belongs to one of its commissions."""
    legs: dict[str, Counter[tuple[int | None, AccountKind, int, str]]] = defaultdict(Counter)
    for leg in f.legs:
        if leg.kind in KINDS:
            legs[leg.key][(leg.owner_id, leg.account, leg.amount, leg.currency)] += 1
    out: list[Drift] = []
    known: set[str] = set()
    for c in f.commissions:
        at = f"order {f.order.ref} level {c.level}"
        wanted = _POSTINGS.get(c.status, set())
        for kind in KINDS:
            key = posting_key(c, kind)
            known.add(key)
            found = legs.get(key)
            if found is None:
                if kind in wanted:
                    out.append(Drift(f"{at}: {c.status}, but it has no {kind} posting ({key})"))
            elif kind not in wanted:
                out.append(Drift(f"{at}: {c.status}, but it has a {kind} posting ({key})"))
            elif found != _moved(c, kind):
                src, dst = _MOVES[kind]
                out.append(
                    Drift(f"{at}: posting {key} does not move {c.amount} {c.currency} from {src} to {dst}")
                )
    out += [
        Drift(f"order {f.order.ref}: posting {key} belongs to none of its commissions")
        for key in legs
        if key not in known
    ]
    return out


def _moved(c: Commission, kind: str) -> Counter[tuple[int | None, AccountKind, int, str]]:
    src, dst = _MOVES[kind]

    def owner(k: AccountKind) -> int | None:
        return None if k is _EXPENSE else c.beneficiary_id

    return Counter([(owner(src), src, -c.amount, c.currency), (owner(dst), dst, c.amount, c.currency)])


def _grouped(items: Iterable[_T], key: Callable[[_T], int]) -> dict[int, list[_T]]:
    out: dict[int, list[_T]] = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out


def _users(repo: UserRepo, buyer_ids: set[int]) -> dict[int, User]:
    """The buyers and their referrers, as far up as commissions go."""
    found = {u.id: u for u in repo.many(buyer_ids)} if buyer_ids else {}
    for _ in range(MAX_COMMISSION_LEVELS):
        wanted = {u.referrer_id for u in found.values() if u.referrer_id is not None} - set(found)
        if not wanted:
            break
        found.update((u.id, u) for u in repo.many(wanted))
    return found


def check_orders(
    uow: UnitOfWork, defaults: tuple[int, ...], progress: Progress | None = None, page: int = PAGE
) -> list[Drift]:
    """``order_drift`` of every order, a page at a time; ``defaults``: COMMISSION_RATES (for orders
    delivered before the rates were kept); ``progress(done, total)`` after each page."""
    r = uow.repo
    total = r.orders.count()
    products = {p.id: p for p in r.catalog.products(active_only=False)}
    drift: list[Drift] = []
    done = after = 0
    while orders := r.orders.page(after, page):
        after = orders[-1].id
        ids = [o.id for o in orders]
        payments = _grouped(r.payments.for_orders(ids), lambda p: p.order_id or 0)
        commissions = _grouped(r.ledger.commissions_for_orders(ids), lambda c: c.order_id)
        legs = _grouped(r.ledger.legs_for_orders(ids), lambda leg: leg.order_id)
        users = _users(r.users, {o.user_id for o in orders})
        for o in orders:
            buyer = users.get(o.user_id)
            facts = OrderFacts(
                order=o,
                product=products.get(o.product_id),
                payments=payments.get(o.id, []),
                chain=referrer_chain(users.get, buyer) if buyer is not None else [],
                commissions=commissions.get(o.id, []),
                legs=legs.get(o.id, []),
            )
            drift += order_drift(facts, defaults)
        done += len(orders)
        if progress is not None:
            progress(done, total)
    return drift


def check_all(uow: UnitOfWork, defaults: tuple[int, ...], progress: Progress | None = None) -> list[Drift]:
    """Everything ``keyshop ledger check`` verifies, in one snapshot of the database: ``core.ledger.check``
    and ``check_orders``. Empty when clean."""
    uow.repo.ledger.snapshot()
    return check(uow) + check_orders(uow, defaults, progress)
