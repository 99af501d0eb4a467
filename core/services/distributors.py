"""Distributors seen from both sides: a distributor's own dashboard (their funnel, money per currency, last
commissions), the admins' overview (totals, the top distributors per currency), one distributor's card and
the report the CLI prints, each read in one transaction; and what the admins set for one distributor: their
commission rates (replacing ``COMMISSION_RATES`` level by level, ``core.rates``) and a block.

A blocked distributor earns no commission on orders delivered from then on (their share stays the shop's;
the level above them still earns). Blocking takes back nothing already posted, and it is not a ban: a
blocked distributor still buys (banning is ``BuyerDesk.ban``). Nobody sets their own rates or block, and an
owner's are set by an owner only (``check_may_set_terms``). Every change is audited."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from core.context import Context, UnitOfWork
from core.errors import DistributorNotFound, OwnerTermsRefused, OwnTermsRefused
from core.models import STARS, CommissionStatus, User
from core.rates import Rates, format_rates, parse_rates
from core.repositories.distributors import (
    CommissionLine,
    DistributorSummary,
    DistributorTerms,
    Earnings,
    Totals,
)

COMMISSIONS_PAGE = 10  # a dashboard's last commissions
TOP_PAGE = 10  # distributors per page of the admins' overview


def check_may_set_terms(user: User, actor: str, owners: Collection[str]) -> None:
    """Whether ``actor`` may set ``user``'s commission rates or block: never their own (``OwnTermsRefused``:
    an admin raising their own rates), and an owner's only as an owner (``OwnerTermsRefused``). ``actor``
    and ``owners`` name people as the audit trail does, ``<channel>:<external id>``."""
    who = f"{user.channel}:{user.external_id}"
    if who == actor:
        raise OwnTermsRefused(user_id=user.id)
    if who in owners and actor not in owners:
        raise OwnerTermsRefused(user_id=user.id)


def mask_ref(ref: str) -> str:
    """What a distributor sees of an order's reference: enough to tell their commissions apart, not
    enough to look the buyer's order up."""
    return f"{ref[:2]}…{ref[-2:]}" if len(ref) > 6 else "…"


@dataclass(frozen=True, slots=True)
class EarnedCommission:
    """One commission on a distributor's dashboard: the order's reference masked (``mask_ref``)."""

    order: str
    level: int
    amount: int
    currency: str
    status: CommissionStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class Dashboard:
    summary: DistributorSummary
    commissions: tuple[EarnedCommission, ...]  # newest first, one page
    page: int
    has_more: bool  # an older page exists


@dataclass(frozen=True, slots=True)
class Overview:
    totals: Totals
    currency: str  # the currency the ranking is by
    currencies: tuple[str, ...]  # those with money (the shop's first; just the shop's if none), to rank by
    top: tuple[DistributorSummary, ...]  # most earned in ``currency`` first, one page
    page: int
    has_more: bool


class DistributorService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _order(self, currencies: set[str]) -> tuple[str, ...]:
        """The shop's currency first, then Stars, then the rest by code."""
        rank = {self.ctx.config.currency: 0, STARS: 1}
        return tuple(sorted(currencies, key=lambda c: (rank.get(c, 2), c)))

    def _ordered(self, earnings: tuple[Earnings, ...]) -> tuple[Earnings, ...]:
        by = {e.currency: e for e in earnings}
        return tuple(by[c] for c in self._order(set(by)))

    def _sorted(self, s: DistributorSummary) -> DistributorSummary:
        """``s`` with its currencies in the order the screens show them."""
        return replace(s, earnings=self._ordered(s.earnings))

    async def dashboard(self, user_id: int, page: int = 0) -> Dashboard:
        """A distributor's own view: funnel, money per currency, a page of their commissions."""
        d = await self.ctx.read(_dashboard, user_id, page)
        return replace(d, summary=self._sorted(d.summary))

    async def overview(self, currency: str | None = None, page: int = 0) -> Overview:
        """The admins' view: totals, and a page of distributors by what they earned in ``currency`` (one
        of those with money; when not given or not one of them, the first of them: the shop's currency
        when it has money)."""
        return await self.ctx.read(self._overview, currency, page)

    def _overview(self, uow: UnitOfWork, currency: str | None, page: int) -> Overview:
        r = uow.repo.distributors
        totals = r.totals()
        currencies = self._order({e.currency for e in totals.earnings}) or (self.ctx.config.currency,)
        chosen = currency if currency in currencies else currencies[0]
        ids = r.ranked(chosen, page * TOP_PAGE, TOP_PAGE + 1)
        by_id = {s.user.id: self._sorted(s) for s in r.summaries(ids[:TOP_PAGE])}
        top = tuple(by_id[i] for i in ids[:TOP_PAGE] if i in by_id)
        earnings = self._ordered(totals.earnings)
        return Overview(
            Totals(totals.distributors, totals.referred_buyers, earnings),
            chosen,
            currencies,
            top,
            page,
            len(ids) > TOP_PAGE,
        )

    async def card(self, user_id: int) -> DistributorSummary:
        """One distributor for the admins (anyone with a row in the shop can be one)."""
        return self._sorted(await self.ctx.read(_card, user_id))

    async def report(self) -> list[DistributorSummary]:
        """Every distributor, by user id (``keyshop distributors``): the read behind the admins' screens."""
        found = await self.ctx.read(lambda uow: uow.repo.distributors.summaries(None))
        return [self._sorted(s) for s in found]

    async def set_rates(
        self, user_id: int, text: str | None, *, actor: str, owners: Collection[str] = ()
    ) -> DistributorTerms:
        """Override the commission rates this distributor earns at (``text`` as ``COMMISSION_RATES``
        reads, refused with ``InvalidRates``), or with None go back to the shop's. Applies to commissions
        posted from now on. Audited with the old and new rates. ``owners``: the shop's owners, as
        ``actor`` names people (``check_may_set_terms``)."""
        rates = parse_rates(text) if text is not None else None
        now = self.ctx.clock.now()
        return await self.ctx.write(_set_rates, user_id, rates, actor, frozenset(owners), now)

    async def set_blocked(
        self, user_id: int, blocked: bool, *, actor: str, owners: Collection[str] = ()
    ) -> bool:
        """Block (or unblock) a distributor's commissions from now on. False: they already were. Audited.
        ``owners`` as for ``set_rates``."""
        now = self.ctx.clock.now()
        return await self.ctx.write(_set_blocked, user_id, blocked, actor, frozenset(owners), now)


# ---------------------------------------------------------------- transactions (on the database thread)


def _one(uow: UnitOfWork, user_id: int) -> DistributorSummary:
    found = uow.repo.distributors.summaries([user_id])
    if not found:
        raise DistributorNotFound(user_id=user_id)
    return found[0]


def _card(uow: UnitOfWork, user_id: int) -> DistributorSummary:
    return _one(uow, user_id)


def _earned(c: CommissionLine) -> EarnedCommission:
    return EarnedCommission(mask_ref(c.order_ref), c.level, c.amount, c.currency, c.status, c.created_at)


def _dashboard(uow: UnitOfWork, user_id: int, page: int) -> Dashboard:
    summary = _one(uow, user_id)
    lines = uow.repo.distributors.commissions(user_id, page * COMMISSIONS_PAGE, COMMISSIONS_PAGE + 1)
    shown = tuple(_earned(c) for c in lines[:COMMISSIONS_PAGE])
    return Dashboard(summary, shown, page, len(lines) > COMMISSIONS_PAGE)


def _locked_terms(
    uow: UnitOfWork, user_id: int, actor: str, owners: frozenset[str]
) -> DistributorTerms | None:
    """The distributor's settings, their user row locked (one admin's change at a time per distributor),
    if ``actor`` may change them."""
    user = uow.repo.users.get(user_id, lock=True)
    if user is None:
        raise DistributorNotFound(user_id=user_id)
    check_may_set_terms(user, actor, owners)
    return uow.repo.distributors.terms(user_id)


def _shown(rates: Rates | None) -> str:
    return format_rates(rates) if rates is not None else "default"


def _set_rates(
    uow: UnitOfWork, user_id: int, rates: Rates | None, actor: str, owners: frozenset[str], now: datetime
) -> DistributorTerms:
    r = uow.repo
    old = _locked_terms(uow, user_id, actor, owners)
    before = old.rates if old is not None else None
    if before != rates:
        r.distributors.put_terms(user_id, now=now, actor=actor, rates=rates)
        r.audit.add(
            now, actor, "distributor_rates_set", user_id=user_id, old=_shown(before), new=_shown(rates)
        )
    terms = r.distributors.terms(user_id)
    uow.commit()
    return terms or DistributorTerms(user_id, None, False, now, actor)


def _set_blocked(
    uow: UnitOfWork, user_id: int, blocked: bool, actor: str, owners: frozenset[str], now: datetime
) -> bool:
    r = uow.repo
    old = _locked_terms(uow, user_id, actor, owners)
    if (old is not None and old.blocked) is blocked:
        return False
    r.distributors.put_terms(user_id, now=now, actor=actor, blocked=blocked)
    r.audit.add(now, actor, "distributor_blocked" if blocked else "distributor_unblocked", user_id=user_id)
    uow.commit()
    return True
