"""Withdrawal requests (payout_requests): written once per request key, moved only by UPDATEs guarded by
their old status (of two admins deciding one request, exactly one gets the row back)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, select, update

from core import tables as t
from core.models import OPEN_PAYOUT, AccountKind, Balance, Payout, PayoutStatus
from core.repositories._rows import dialect_insert, to_dataclass

_OPEN = [s.value for s in OPEN_PAYOUT]


@dataclass(frozen=True, slots=True)
class OpenTotal:
    """The open requests paying in one currency: how many, and what they pay in all."""

    payout_currency: str
    requests: int
    payout_amount: int


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """A request as the admins' queue shows it: with who asked (their channel id and handle) and their
    available balance in its currency now (below zero: a refund took back more commission since the request
    than was left; an open request then pays out commission the shop took back)."""

    payout: Payout
    channel: str
    external_id: str
    username: str | None
    available: int


def _payout(r: Any) -> Payout:
    return to_dataclass(Payout, r, status=PayoutStatus)


def _lines() -> Select[Any]:
    p, u, a, e = t.payout_requests, t.users, t.ledger_accounts, t.ledger_entries
    available = (
        select(func.coalesce(func.sum(e.c.amount), 0))
        .select_from(e.join(a, a.c.id == e.c.account_id))
        .where(
            a.c.owner_id == p.c.user_id,
            a.c.kind == AccountKind.AVAILABLE.value,
            a.c.currency == p.c.currency,
        )
        .scalar_subquery()
    )
    return select(p, u.c.channel, u.c.external_id, u.c.username, available.label("available")).select_from(
        p.join(u, u.c.id == p.c.user_id)
    )


def _line(r: Any) -> PayoutLine:
    return PayoutLine(_payout(r), r.channel, r.external_id, r.username, int(r.available))


class PayoutRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def insert(self, **values: Any) -> int | None:
        """A new request, unless one with its ``request_key`` exists or the user already has an open one
        in its currency (either unique index): its id if inserted."""
        p = t.payout_requests
        stmt = dialect_insert(self.dialect, p).values(**values).on_conflict_do_nothing().returning(p.c.id)
        found = self.conn.execute(stmt).scalar()
        return int(found) if found is not None else None

    def get(self, payout_id: int) -> Payout | None:
        r = self.conn.execute(select(t.payout_requests).where(t.payout_requests.c.id == payout_id)).first()
        return _payout(r) if r else None

    def by_key(self, request_key: str) -> Payout | None:
        p = t.payout_requests
        r = self.conn.execute(select(p).where(p.c.request_key == request_key)).first()
        return _payout(r) if r else None

    def open_for(self, user_id: int, currency: str) -> Payout | None:
        """The user's open (requested or approved) request in ``currency``, if any (at most one)."""
        p = t.payout_requests
        q = select(p).where(p.c.user_id == user_id, p.c.currency == currency, p.c.status.in_(_OPEN))
        r = self.conn.execute(q).first()
        return _payout(r) if r else None

    def move(
        self, payout_id: int, old: Collection[PayoutStatus], new: PayoutStatus, **values: Any
    ) -> Payout | None:
        """The request becomes ``new`` (with ``values``) if its status is one of ``old``; the request as it
        is now, or None when its status was another (someone decided it first) or it does not exist."""
        p = t.payout_requests
        res = self.conn.execute(
            update(p)
            .where(p.c.id == payout_id, p.c.status.in_([s.value for s in old]))
            .values(status=new.value, **values)
            .returning(*p.c)
        )
        r = res.first()
        return _payout(r) if r else None

    def queue(self, offset: int, limit: int) -> list[PayoutLine]:
        """Open requests, oldest first, ``limit`` from ``offset``, with who asked."""
        p = t.payout_requests
        q = _lines().where(p.c.status.in_(_OPEN)).order_by(p.c.id).offset(offset).limit(limit)
        return [_line(r) for r in self.conn.execute(q).all()]

    def line(self, payout_id: int) -> PayoutLine | None:
        """One request (in any state) with who asked."""
        r = self.conn.execute(_lines().where(t.payout_requests.c.id == payout_id)).first()
        return _line(r) if r else None

    def count_open(self) -> int:
        p = t.payout_requests
        q = select(func.count()).select_from(p).where(p.c.status.in_(_OPEN))
        return int(self.conn.execute(q).scalar_one())

    def of_user(self, user_id: int, limit: int) -> list[Payout]:
        """The user's requests, newest first."""
        p = t.payout_requests
        q = select(p).where(p.c.user_id == user_id).order_by(p.c.id.desc()).limit(limit)
        return [_payout(r) for r in self.conn.execute(q).all()]

    def open_totals(self) -> list[OpenTotal]:
        """The open requests per currency they pay in, by currency."""
        p = t.payout_requests
        q = (
            select(p.c.payout_currency, func.count(), func.coalesce(func.sum(p.c.payout_amount), 0))
            .where(p.c.status.in_(_OPEN))
            .group_by(p.c.payout_currency)
            .order_by(p.c.payout_currency)
        )
        return [OpenTotal(r[0], int(r[1]), int(r[2])) for r in self.conn.execute(q).all()]

    def unrequested_balances(self) -> list[Balance]:
        """Available balances above zero, per user and currency, where the user has no open request in
        that currency and has not blocked the bot: who could ask for a payout now (the minimum aside)."""
        a, e, u, p = t.ledger_accounts, t.ledger_entries, t.users, t.payout_requests
        opened = (
            select(p.c.id)
            .where(p.c.user_id == a.c.owner_id, p.c.currency == a.c.currency, p.c.status.in_(_OPEN))
            .exists()
        )
        total = func.sum(e.c.amount)
        q = (
            select(a.c.owner_id, a.c.currency, total)
            .select_from(a.join(e, e.c.account_id == a.c.id).join(u, u.c.id == a.c.owner_id))
            .where(a.c.kind == AccountKind.AVAILABLE.value, u.c.bot_blocked.is_(False), ~opened)
            .group_by(a.c.id, a.c.owner_id, a.c.currency)
            .having(total > 0)
            .order_by(a.c.owner_id, a.c.currency)
        )
        return [Balance(r[0], AccountKind.AVAILABLE, r[1], int(r[2])) for r in self.conn.execute(q).all()]
