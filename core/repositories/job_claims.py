"""Once-per-period runs (``job_claims``): the daily summary of a date, the payout run of a scheduled slot.

A claim is one INSERT on the primary key, in the transaction that does the period's work: the transaction
whose row went in does it; any other (a second scheduler, a re-run) finds the period taken. On PostgreSQL a
second insert of the same key waits for the first transaction to end, then finds it taken (or takes it, if
the first rolled back); on SQLite writers take turns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from core import tables as t
from core.repositories._rows import dialect_insert


class JobClaimRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def claim(self, name: str, period: str, now: datetime) -> bool:
        """Take ``period`` of job ``name``: True when this transaction took it, False when it was taken."""
        c = t.job_claims
        stmt = (
            dialect_insert(self.dialect, c)
            .values(name=name, period=period, claimed_at=now)
            .on_conflict_do_nothing(index_elements=["name", "period"])
            .returning(c.c.name)  # RETURNING, not rowcount: what psycopg reports for an upsert varies
        )
        return self.conn.execute(stmt).first() is not None

    def claimed(self, name: str, period: str) -> bool:
        c = t.job_claims
        q = select(c.c.claimed_at).where(c.c.name == name, c.c.period == period)
        return self.conn.execute(q).first() is not None
