"""Small named positions that must survive restarts (how far the Stars ledger was reconciled, the catalog's
version, which product a chat draft became)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select, update

from core import tables as t
from core.repositories._rows import dialect_insert


class CursorRepo:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def get(self, name: str) -> int | None:
        q = select(t.cursors.c.position).where(t.cursors.c.name == name)
        return (self.conn.execute(q)).scalar()

    def advance(self, name: str, position: int, now: datetime) -> None:
        """Move the cursor forward (never back: two instances may reconcile at once)."""
        c = t.cursors
        stmt = dialect_insert(self.dialect, c).values(name=name, position=position, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "position": func.max(c.c.position, stmt.excluded.position)
                if self.dialect == "sqlite"
                else func.greatest(c.c.position, stmt.excluded.position),
                "updated_at": now,
            },
        )
        self.conn.execute(stmt)

    def bump(self, name: str, now: datetime) -> None:
        """Add one to the cursor (a version number other processes watch), creating it at 1."""
        c = t.cursors
        stmt = dialect_insert(self.dialect, c).values(name=name, position=1, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"position": c.c.position + 1, "updated_at": now}
        )
        self.conn.execute(stmt)

    def claim(self, name: str, position: int, now: datetime) -> bool:
        """Move the cursor to ``position`` only if that is past where it stands (creating it there); True
        when it moved. Of two transactions claiming the same position, one moves it; the other waits for
        it (the row's lock) and then finds the cursor there already. A position is claimed once."""
        c = t.cursors
        stmt = dialect_insert(self.dialect, c).values(name=name, position=position, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"position": stmt.excluded.position, "updated_at": now},
            where=c.c.position < stmt.excluded.position,
        )
        # RETURNING rather than rowcount, which psycopg leaves at -1 for an upsert here
        return self.conn.execute(stmt.returning(c.c.position)).first() is not None

    def create_once(self, name: str, now: datetime) -> bool:
        """Create the cursor at 0 unless it exists: True when this transaction created it. (On PostgreSQL a
        second transaction claiming the same name waits for the first to end, then finds it taken.)"""
        c = t.cursors
        stmt = (
            dialect_insert(self.dialect, c)
            .values(name=name, position=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(c.c.name)
        )
        return self.conn.execute(stmt).first() is not None

    def put(self, name: str, position: int, now: datetime) -> None:
        """Set an existing cursor to ``position``."""
        c = t.cursors
        self.conn.execute(update(c).where(c.c.name == name).values(position=position, updated_at=now))
