"""Distributors: what the admins set for one (rates, block) and what the views read of them — funnel,
earnings per currency, balances per account, their latest commissions — each a grouped query over every
distributor asked for at once (never one query per distributor).

A *distributor* is a user who brought someone to the shop, earned a commission, or has settings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Subquery,
    bindparam,
    distinct,
    func,
    literal,
    select,
    union,
)

from core import tables as t
from core.models import AccountKind, CommissionStatus, OrderStatus, User
from core.rates import Rates
from core.repositories._rows import dialect_insert, to_user
from core.sql import Prebuilt, run

# Commissions that stand: pending or settled (settled money stays earned wherever it went since).
STANDING = (CommissionStatus.PENDING.value, CommissionStatus.AVAILABLE.value)

Ids = Collection[int] | None  # some distributors, or (None) every one


@dataclass(frozen=True, slots=True)
class DistributorTerms:
    """An admin's settings for one distributor. ``rates``: basis points per level replacing
    ``COMMISSION_RATES`` level by level for commissions they earn (None: the shop's)."""

    user_id: int
    rates: Rates | None
    blocked: bool
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Funnel:
    opens: int = 0  # /start with their invite link, by anyone
    starts: int = 0  # new users their link brought
    buyers: int = 0  # users they brought with at least one delivered order
    orders: int = 0  # those users' delivered orders


@dataclass(frozen=True, slots=True)
class Earnings:
    """One currency of a distributor (or of all of them): ``earned``, the commissions that stand (pending
    or settled, not reversed or clawed back); ``balances``, each account kind's balance."""

    currency: str
    earned: int = 0
    balances: Mapping[AccountKind, int] = field(default_factory=dict)

    def balance(self, kind: AccountKind) -> int:
        return self.balances.get(kind, 0)


@dataclass(frozen=True, slots=True)
class DistributorSummary:
    user: User
    terms: DistributorTerms | None  # None: the shop's rates, not blocked
    funnel: Funnel
    earnings: tuple[Earnings, ...]  # one per currency they have money in (by code; screens reorder)

    @property
    def blocked(self) -> bool:
        return self.terms is not None and self.terms.blocked

    @property
    def rates(self) -> Rates | None:
        return self.terms.rates if self.terms is not None else None


@dataclass(frozen=True, slots=True)
class Totals:
    distributors: int
    referred_buyers: int  # users brought by someone, with at least one delivered order
    earnings: tuple[Earnings, ...]  # every distributor's together, per currency


@dataclass(frozen=True, slots=True)
class CommissionLine:
    id: int
    order_ref: str
    level: int
    amount: int
    currency: str
    status: CommissionStatus
    created_at: datetime


def _rates(text: str | None) -> Rates | None:
    return tuple(int(p) for p in text.split(",")) if text else None


def _terms(r: Any) -> DistributorTerms:
    return DistributorTerms(
        r.user_id, _rates(r.commission_rates), bool(r.blocked), r.updated_at, r.updated_by
    )


def _among(column: Any, ids: Ids) -> ColumnElement[bool]:
    return column.isnot(None) if ids is None else column.in_(list(ids))


def distributor_ids() -> Subquery:
    """Every distributor's user id (column ``user_id``), once each."""
    u, c, s = t.users, t.commissions, t.distributor_settings
    return union(
        select(u.c.referrer_id.label("user_id")).where(u.c.referrer_id.isnot(None)),
        select(c.c.beneficiary_id),
        select(s.c.user_id),
    ).subquery("distributors")


class DistributorRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    # ------------------------------------------------------------------------------ settings

    _Q_TERMS = Prebuilt(
        select(t.distributor_settings).where(t.distributor_settings.c.user_id == bindparam("b_uid"))
    )

    def terms(self, user_id: int) -> DistributorTerms | None:
        """What the admins set for this distributor (None: nothing; on the purchase path)."""
        r = run(self.conn, self._Q_TERMS, {"b_uid": user_id}).first()
        return _terms(r) if r else None

    def put_terms(self, user_id: int, *, now: datetime, actor: str, **values: Any) -> None:
        """Set ``rates`` (basis points per level, or None) and/or ``blocked`` for a distributor, the rest
        kept (a new row starts from the shop's rates, not blocked)."""
        row: dict[str, Any] = {"updated_at": now, "updated_by": actor[:64]}
        if "rates" in values:
            rates = values.pop("rates")
            row["commission_rates"] = ",".join(map(str, rates)) if rates is not None else None
        if "blocked" in values:
            row["blocked"] = bool(values.pop("blocked"))
        if values:
            raise TypeError(f"unknown settings: {sorted(values)}")
        s = t.distributor_settings
        stmt = dialect_insert(self.dialect, s).values(user_id=user_id, **row)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"], set_=row))

    # ------------------------------------------------------------------------------ views

    def summaries(self, ids: Ids) -> list[DistributorSummary]:
        """The given users (None: every distributor) with their settings, funnel and money, by user id.
        Six grouped queries whatever the number of distributors."""
        u = t.users
        users_q = select(u).order_by(u.c.id)
        if ids is None:
            d = distributor_ids()
            users_q = users_q.where(u.c.id.in_(select(d.c.user_id)))
        else:
            users_q = users_q.where(u.c.id.in_(list(ids)))
        users = [to_user(r) for r in self.conn.execute(users_q).all()]
        if not users:
            return []
        wanted = None if ids is None else [x.id for x in users]
        terms = self._terms_of(wanted)
        funnels = self._funnels(wanted)
        money = self._money(wanted)
        return [
            DistributorSummary(
                user,
                terms.get(user.id),
                funnels.get(user.id, Funnel()),
                tuple(sorted(money.get(user.id, {}).values(), key=lambda e: e.currency)),
            )
            for user in users
        ]

    def _terms_of(self, ids: Ids) -> dict[int, DistributorTerms]:
        s = t.distributor_settings
        q = select(s) if ids is None else select(s).where(s.c.user_id.in_(list(ids)))
        return {r.user_id: _terms(r) for r in self.conn.execute(q).all()}

    def _funnels(self, ids: Ids) -> dict[int, Funnel]:
        u, o, rc = t.users, t.orders, t.referral_codes
        codes = select(rc.c.user_id, rc.c.opens, rc.c.starts)
        if ids is not None:
            codes = codes.where(rc.c.user_id.in_(list(ids)))
        bought = (
            select(u.c.referrer_id, func.count(distinct(u.c.id)), func.count(o.c.id))
            .select_from(u.join(o, o.c.user_id == u.c.id))
            .where(_among(u.c.referrer_id, ids), o.c.status == OrderStatus.DELIVERED.value)
            .group_by(u.c.referrer_id)
        )
        found: dict[int, dict[str, int]] = defaultdict(dict)
        for uid, opens, starts in self.conn.execute(codes).all():
            found[uid].update(opens=int(opens), starts=int(starts))
        for uid, buyers, orders in self.conn.execute(bought).all():
            found[uid].update(buyers=int(buyers), orders=int(orders))
        return {uid: Funnel(**v) for uid, v in found.items()}

    def _money(self, ids: Ids) -> dict[int, dict[str, Earnings]]:
        """Per distributor and currency: earned, and each account's balance."""
        c, a, e = t.commissions, t.ledger_accounts, t.ledger_entries
        earned_q = (
            select(c.c.beneficiary_id, c.c.currency, func.sum(c.c.amount))
            .where(_among(c.c.beneficiary_id, ids), c.c.status.in_(STANDING))
            .group_by(c.c.beneficiary_id, c.c.currency)
        )
        balances_q = (
            select(a.c.owner_id, a.c.kind, a.c.currency, func.coalesce(func.sum(e.c.amount), 0))
            .select_from(a.outerjoin(e, e.c.account_id == a.c.id))
            .where(_among(a.c.owner_id, ids))
            .group_by(a.c.owner_id, a.c.kind, a.c.currency)
        )
        earned: dict[tuple[int, str], int] = defaultdict(int)
        held: dict[tuple[int, str], dict[AccountKind, int]] = defaultdict(dict)
        for uid, currency, amount in self.conn.execute(earned_q).all():
            earned[(uid, currency)] += int(amount)
        for uid, kind, currency, amount in self.conn.execute(balances_q).all():
            held[(uid, currency)][AccountKind(kind)] = int(amount)
        out: dict[int, dict[str, Earnings]] = defaultdict(dict)
        for uid, currency in set(earned) | set(held):
            out[uid][currency] = Earnings(
                currency, earned.get((uid, currency), 0), held.get((uid, currency), {})
            )
        return out

    def ranked(self, currency: str, offset: int, limit: int) -> list[int]:
        """Distributors' user ids by what they earned in ``currency`` (most first; then by id), a page."""
        c = t.commissions
        earned = (
            select(c.c.beneficiary_id, func.sum(c.c.amount).label("earned"))
            .where(c.c.currency == currency, c.c.status.in_(STANDING))
            .group_by(c.c.beneficiary_id)
            .subquery("earned")
        )
        d = distributor_ids()
        total = func.coalesce(earned.c.earned, literal(0))
        q = (
            select(d.c.user_id)
            .select_from(d.outerjoin(earned, earned.c.beneficiary_id == d.c.user_id))
            .order_by(total.desc(), d.c.user_id)
            .offset(offset)
            .limit(limit)
        )
        return [int(r[0]) for r in self.conn.execute(q).all()]

    def totals(self) -> Totals:
        """Every distributor's together: how many, the buyers they brought, and money per currency."""
        u, o, c, a, e = t.users, t.orders, t.commissions, t.ledger_accounts, t.ledger_entries
        d = distributor_ids()
        count = int(self.conn.execute(select(func.count()).select_from(d)).scalar_one())
        buyers_q = (
            select(func.count(distinct(u.c.id)))
            .select_from(u.join(o, o.c.user_id == u.c.id))
            .where(u.c.referrer_id.isnot(None), o.c.status == OrderStatus.DELIVERED.value)
        )
        buyers = int(self.conn.execute(buyers_q).scalar_one())
        earned_q = (
            select(c.c.currency, func.sum(c.c.amount)).where(c.c.status.in_(STANDING)).group_by(c.c.currency)
        )
        balances_q = (
            select(a.c.kind, a.c.currency, func.sum(e.c.amount))
            .select_from(a.join(e, e.c.account_id == a.c.id))
            .where(a.c.owner_id.isnot(None))
            .group_by(a.c.kind, a.c.currency)
        )
        earned = {cur: int(v) for cur, v in self.conn.execute(earned_q).all()}
        held: dict[str, dict[AccountKind, int]] = defaultdict(dict)
        for kind, currency, amount in self.conn.execute(balances_q).all():
            held[currency][AccountKind(kind)] = int(amount)
        money = tuple(
            Earnings(cur, earned.get(cur, 0), held.get(cur, {})) for cur in sorted(set(earned) | set(held))
        )
        return Totals(count, buyers, money)

    def commissions(self, user_id: int, offset: int, limit: int) -> list[CommissionLine]:
        """A distributor's commissions, newest first, a page."""
        c, o = t.commissions, t.orders
        q = (
            select(c.c.id, o.c.ref, c.c.level, c.c.amount, c.c.currency, c.c.status, c.c.created_at)
            .select_from(c.join(o, o.c.id == c.c.order_id))
            .where(c.c.beneficiary_id == user_id)
            .order_by(c.c.created_at.desc(), c.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [
            CommissionLine(r[0], r[1], r[2], int(r[3]), r[4], CommissionStatus(r[5]), r[6])
            for r in self.conn.execute(q).all()
        ]
