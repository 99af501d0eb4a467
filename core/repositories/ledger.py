"""The ledger: accounts, postings and their entries, and the commissions they record.

Nothing is ever updated here but a commission's status, and only by an UPDATE guarded by its old status
(the row is the claim: of two transactions moving one commission, exactly one gets it back)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from core import tables as t
from core.models import AccountKind, Balance, Commission, CommissionStatus
from core.repositories._rows import dialect_insert, to_dataclass


@dataclass(frozen=True, slots=True)
class Unbalanced:
    """A posting whose entries in one currency do not sum to zero."""

    posting_id: int
    key: str
    currency: str
    total: int


@dataclass(frozen=True, slots=True)
class MisfiledEntry:
    """An entry in another currency than its account's."""

    entry_id: int
    posting_id: int
    currency: str
    account_currency: str


@dataclass(frozen=True, slots=True)
class PostingLeg:
    """One entry of a posting about an order, with the posting and the account it moves."""

    key: str
    kind: str
    order_id: int
    owner_id: int | None
    account: AccountKind
    amount: int
    currency: str


def _commission(r: Any) -> Commission:
    return to_dataclass(Commission, r, status=CommissionStatus)


class LedgerRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def account(self, owner_id: int | None, kind: AccountKind, currency: str, now: datetime) -> int:
        """The id of the account (made on first use; a concurrent twin waits on the unique index)."""
        a = t.ledger_accounts
        where = a.c.owner_id.is_(None) if owner_id is None else a.c.owner_id.isnot(None)
        cols = ["kind", "currency"] if owner_id is None else ["owner_id", "kind", "currency"]
        stmt = (
            dialect_insert(self.dialect, a)
            .values(owner_id=owner_id, kind=kind.value, currency=currency, created_at=now)
            .on_conflict_do_nothing(index_elements=cols, index_where=where)
        )
        self.conn.execute(stmt)
        owner = a.c.owner_id.is_(None) if owner_id is None else a.c.owner_id == owner_id
        q = select(a.c.id).where(owner, a.c.kind == kind.value, a.c.currency == currency)
        return int(self.conn.execute(q).scalar_one())

    def locked_balance(self, owner_id: int, kind: AccountKind, currency: str, now: datetime) -> int:
        """The balance of a user's account (made if missing), its row locked until this transaction ends:
        every other writer of the account (a payment, a withdrawal, a clawback posting to it) waits, so
        a guard "balance >= amount" read here stays true until COMMIT. PostgreSQL: ``FOR UPDATE`` (a
        posting's entry takes a key-share lock on its account, which that conflicts with); SQLite: the
        write transaction (``BEGIN IMMEDIATE``) already serialises writers."""
        account_id = self.account(owner_id, kind, currency, now)
        if self.dialect == "postgresql":
            a = t.ledger_accounts
            self.conn.execute(select(a.c.id).where(a.c.id == account_id).with_for_update())
        return self._sum(account_id)

    def balance(self, owner_id: int, kind: AccountKind, currency: str) -> int:
        """The balance of a user's account (0 if it has none), as it is now: a read, nothing locked."""
        a = t.ledger_accounts
        q = select(a.c.id).where(a.c.owner_id == owner_id, a.c.kind == kind.value, a.c.currency == currency)
        account_id = self.conn.execute(q).scalar()
        return 0 if account_id is None else self._sum(int(account_id))

    def _sum(self, account_id: int) -> int:
        e = t.ledger_entries
        q = select(func.coalesce(func.sum(e.c.amount), 0)).where(e.c.account_id == account_id)
        return int(self.conn.execute(q).scalar_one())

    def add_posting(
        self,
        key: str,
        kind: str,
        order_id: int | None,
        actor: str,
        at: datetime,
        entries: Sequence[tuple[int, int, str]],
    ) -> bool:
        """Write a posting and its entries ``(account id, signed amount, currency)`` unless a posting
        with ``key`` exists. True if written. (The caller checked that the entries balance.)"""
        p = t.ledger_postings
        stmt = (
            dialect_insert(self.dialect, p)
            .values(key=key, kind=kind, order_id=order_id, actor=actor[:64], at=at)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(p.c.id)
        )
        posting_id = self.conn.execute(stmt).scalar()
        if posting_id is None:
            return False
        self.conn.execute(
            insert(t.ledger_entries),
            [
                {"posting_id": posting_id, "account_id": acc, "amount": amount, "currency": cur}
                for acc, amount, cur in entries
            ],
        )
        return True

    def add_commission(self, **values: Any) -> int | None:
        """Insert a commission unless its (order, level) has one. Its id if inserted."""
        c = t.commissions
        stmt = (
            dialect_insert(self.dialect, c)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["order_id", "level"])
            .returning(c.c.id)
        )
        found = self.conn.execute(stmt).scalar()
        return int(found) if found is not None else None

    def commissions_for_order(self, order_id: int) -> list[Commission]:
        c = t.commissions
        rows = self.conn.execute(select(c).where(c.c.order_id == order_id).order_by(c.c.level)).all()
        return [_commission(r) for r in rows]

    def commissions_for_orders(self, order_ids: Iterable[int]) -> list[Commission]:
        c = t.commissions
        q = select(c).where(c.c.order_id.in_(list(order_ids))).order_by(c.c.order_id, c.c.level)
        return [_commission(r) for r in self.conn.execute(q).all()]

    def legs_for_orders(self, order_ids: Iterable[int]) -> list[PostingLeg]:
        """Every entry of the postings made about these orders."""
        p, e, a = t.ledger_postings, t.ledger_entries, t.ledger_accounts
        q = (
            select(p.c.key, p.c.kind, p.c.order_id, a.c.owner_id, a.c.kind, e.c.amount, e.c.currency)
            .select_from(p.join(e, e.c.posting_id == p.c.id).join(a, a.c.id == e.c.account_id))
            .where(p.c.order_id.in_(list(order_ids)))
            .order_by(p.c.id, e.c.id)
        )
        return [
            PostingLeg(r[0], r[1], r[2], r[3], AccountKind(r[4]), int(r[5]), r[6])
            for r in self.conn.execute(q).all()
        ]

    def snapshot(self) -> None:
        """The rest of this read transaction sees the database as it was at its first statement (this one
        must come first): what a check compares was all there at once. SQLite's read transactions always
        do; PostgreSQL needs REPEATABLE READ."""
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def move_order_commissions(
        self, order_id: int, old: CommissionStatus, new: CommissionStatus
    ) -> list[Commission]:
        """The order's commissions in ``old`` become ``new``; returns those this transaction moved."""
        c = t.commissions
        res = self.conn.execute(
            update(c)
            .where(c.c.order_id == order_id, c.c.status == old.value)
            .values(status=new.value)
            .returning(*c.c)
        )
        return [_commission(r) for r in res.all()]

    def claim_due(self, now: datetime, limit: int) -> list[Commission]:
        """Up to ``limit`` pending commissions whose holding period ended by ``now`` become available;
        returns those this transaction claimed. On PostgreSQL rows another settlement holds are skipped
        (it settles them); the status guard makes a row that was moved meanwhile count for nobody else.

        Locks come in the order a refund takes them, the order before its commissions: a commission whose
        order another transaction holds (a refund, a payment) is skipped, and its order is held (``KEY
        SHARE``, what the settlement's posting needs) from the claim on. Claiming the commissions first
        and reaching the order through the posting's foreign key after was a deadlock with a refund."""
        c, o = t.commissions, t.orders
        due = (
            select(c.c.id)
            .where(c.c.status == CommissionStatus.PENDING.value, c.c.due_at <= now)
            .order_by(c.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            # Two locking clauses, which SQLAlchemy cannot write: the commission claimed (a twin
            # settlement skips it), its order kept from a refund until COMMIT (skipped if one holds it).
            due = (
                due.join_from(c, o, o.c.id == c.c.order_id)
                .with_for_update(of=c, skip_locked=True)
                .suffix_with("FOR KEY SHARE OF orders SKIP LOCKED")
            )
        res = self.conn.execute(
            update(c)
            .where(c.c.id.in_(due.scalar_subquery()), c.c.status == CommissionStatus.PENDING.value)
            .values(status=CommissionStatus.AVAILABLE.value, settled_at=now)
            .returning(*c.c)
        )
        return sorted((_commission(r) for r in res.all()), key=lambda x: x.id)

    def balances(self, owner_ids: Iterable[int | None] | None = None) -> list[Balance]:
        """Every account's balance (the sum of its entries), or only the accounts of ``owner_ids``."""
        a, e = t.ledger_accounts, t.ledger_entries
        q = (
            select(a.c.owner_id, a.c.kind, a.c.currency, func.coalesce(func.sum(e.c.amount), 0))
            .select_from(a.outerjoin(e, e.c.account_id == a.c.id))
            .group_by(a.c.id, a.c.owner_id, a.c.kind, a.c.currency)
            .order_by(a.c.id)
        )
        if owner_ids is not None:
            wanted = list(owner_ids)
            shop = None in wanted
            users = [o for o in wanted if o is not None]
            cond = a.c.owner_id.in_(users)
            q = q.where(cond | a.c.owner_id.is_(None)) if shop else q.where(cond)
        return [Balance(r[0], AccountKind(r[1]), r[2], int(r[3])) for r in self.conn.execute(q).all()]

    def unbalanced(self) -> list[Unbalanced]:
        """Postings whose entries do not sum to zero in some currency."""
        p, e = t.ledger_postings, t.ledger_entries
        total = func.sum(e.c.amount)
        q = (
            select(p.c.id, p.c.key, e.c.currency, total)
            .select_from(p.join(e, e.c.posting_id == p.c.id))
            .group_by(p.c.id, p.c.key, e.c.currency)
            .having(total != 0)
            .order_by(p.c.id)
        )
        return [Unbalanced(r[0], r[1], r[2], int(r[3])) for r in self.conn.execute(q).all()]

    def misfiled(self) -> list[MisfiledEntry]:
        a, e = t.ledger_accounts, t.ledger_entries
        q = (
            select(e.c.id, e.c.posting_id, e.c.currency, a.c.currency)
            .select_from(e.join(a, a.c.id == e.c.account_id))
            .where(e.c.currency != a.c.currency)
            .order_by(e.c.id)
        )
        return [MisfiledEntry(r[0], r[1], r[2], r[3]) for r in self.conn.execute(q).all()]

    def commission_totals(self) -> list[Balance]:
        """What the commissions say each distributor's pending and available accounts hold: pending
        commissions, and settled ones less those clawed back after settlement."""
        c = t.commissions
        q = (
            select(c.c.beneficiary_id, c.c.status, c.c.currency, func.sum(c.c.amount))
            .where(c.c.status != CommissionStatus.REVERSED.value)
            .group_by(c.c.beneficiary_id, c.c.status, c.c.currency)
        )
        out: dict[tuple[int, AccountKind, str], int] = {}
        for owner, status, currency, amount in self.conn.execute(q).all():
            st = CommissionStatus(status)
            kind = AccountKind.PENDING if st is CommissionStatus.PENDING else AccountKind.AVAILABLE
            if st is CommissionStatus.CLAWED_BACK:
                continue  # settled (+) then clawed back (-): nothing left in either account
            key = (int(owner), kind, currency)
            out[key] = out.get(key, 0) + int(amount)
        return [Balance(o, k, cur, v) for (o, k, cur), v in sorted(out.items())]
