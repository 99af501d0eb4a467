"""Referral codes: who invites with which code, and how often the code was opened and started."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from core import tables as t
from core.repositories._rows import dialect_insert


@dataclass(frozen=True, slots=True)
class ReferralCode:
    user_id: int
    code: str
    opens: int  # /start with the code, by anyone
    starts: int  # new users the code attributed


class ReferralRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def of_user(self, user_id: int) -> ReferralCode | None:
        r = self.conn.execute(select(t.referral_codes).where(t.referral_codes.c.user_id == user_id)).first()
        return ReferralCode(r.user_id, r.code, r.opens, r.starts) if r else None

    def by_code(self, code: str, *, lock: bool = False) -> ReferralCode | None:
        q = select(t.referral_codes).where(t.referral_codes.c.code == code)
        r = self.conn.execute(q.with_for_update() if lock else q).first()
        return ReferralCode(r.user_id, r.code, r.opens, r.starts) if r else None

    def insert_once(self, user_id: int, code: str, now: datetime) -> bool:
        """The user's code, unless they have one or the code is taken (either UNIQUE): True if inserted."""
        c = t.referral_codes
        stmt = (
            dialect_insert(self.dialect, c)
            .values(user_id=user_id, code=code, created_at=now)
            .on_conflict_do_nothing()
            .returning(c.c.user_id)
        )
        return self.conn.execute(stmt).first() is not None

    def count(self, code: str, *, opens: int = 0, starts: int = 0) -> None:
        """Add to a code's counts, in SQL (concurrent opens never lose one)."""
        c = t.referral_codes
        self.conn.execute(
            update(c).where(c.c.code == code).values(opens=c.c.opens + opens, starts=c.c.starts + starts)
        )

    def referrer_of(self, user_id: int) -> int | None:
        q = select(t.users.c.referrer_id).where(t.users.c.id == user_id)
        return self.conn.execute(q).scalar()
