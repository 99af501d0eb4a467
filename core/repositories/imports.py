"""Stock imports in progress: staged keys, heartbeats, publishing and sweeping abandoned ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Interval, String, delete, func, insert, literal, select, update

from core import tables as t
from core.models import KeyStatus
from core.repositories._rows import dialect_insert
from core.tables import Id


def _db_now(dialect: str, minus: timedelta | None = None) -> Any:
    """The database's clock as an SQL expression comparable with (and storable in) a ``UTCDateTime``.

    On SQLite ``UTCDateTime`` stores naive UTC text as ``YYYY-MM-DD HH:MM:SS.ffffff``; SQLite's own clock
    gives milliseconds (``%f`` is ``SS.SSS``), so three zeros complete the same fixed-width format and text
    order stays time order.
    """
    if dialect == "sqlite":
        modifiers = () if minus is None else (f"-{minus.total_seconds():.3f} seconds",)
        return func.strftime("%Y-%m-%d %H:%M:%f000", "now", *modifiers, type_=t.UTCDateTime())
    now = func.statement_timestamp(type_=t.UTCDateTime())
    return now if minus is None else now - literal(minus, Interval())


class ImportRepo:
    """Imports in progress. Their heartbeat and the staleness check both read the database's clock: the
    process importing and the one sweeping may run on hosts whose clocks disagree."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn, self.dialect = conn, dialect

    def start(self, product_id: int, actor: str, now: datetime) -> int:
        res = self.conn.execute(
            insert(t.stock_imports)
            .values(
                product_id=product_id,
                status="running",
                actor=actor,
                started_at=now,
                heartbeat_at=_db_now(self.dialect),
            )
            .returning(t.stock_imports.c.id)
        )
        return int(res.scalar_one())

    def heartbeat(self, import_id: int, lines: int) -> bool:
        """Mark a running import alive (database time). False if it is no longer running (swept)."""
        si = t.stock_imports
        res = self.conn.execute(
            update(si)
            .where(si.c.id == import_id, si.c.status == "running")
            .values(heartbeat_at=_db_now(self.dialect), lines=lines)
        )
        return res.rowcount == 1

    def lock_running(self, import_id: int) -> bool:
        """Lock the import row for this transaction (FOR UPDATE; on SQLite the write transaction holds
        the database). True if it is still running, so it may publish."""
        si = t.stock_imports
        q = select(si.c.status).where(si.c.id == import_id).with_for_update()
        return (self.conn.execute(q)).scalar() == "running"

    def lock_product(self, product_id: int) -> bool:
        """Lock the product keys are about to be published to, until this transaction ends. True if it
        exists. keys.product_id has no foreign key (a per-row check on every imported key): this one
        check stands for it. FOR KEY SHARE is the lock a foreign key takes: the product cannot be deleted
        meanwhile, yet checkouts (whose order rows take the same lock) and edits of it are not held up
        by a long publish. On SQLite the write transaction holds the database."""
        p = t.products
        q = select(p.c.id).where(p.c.id == product_id).with_for_update(read=True, key_share=True)
        return self.conn.execute(q).first() is not None

    def staged_count(self, import_id: int) -> int:
        s = t.stock_import_rows
        q = select(func.count()).select_from(s).where(s.c.import_id == import_id)
        return int((self.conn.execute(q)).scalar_one())

    def finish(self, import_id: int, status: str, now: datetime, **counts: int) -> int:
        """Close a running import as ``done`` or ``failed``; 0 if it was not running any more."""
        si = t.stock_imports
        res = self.conn.execute(
            update(si)
            .where(si.c.id == import_id, si.c.status == "running")
            .values(status=status, heartbeat_at=_db_now(self.dialect), finished_at=now, **counts)
        )
        return res.rowcount

    def stage(self, import_id: int, kid: str, sealed: list[tuple[bytes, bytes]]) -> None:
        """Write a batch of (blind_index, ciphertext) to the staging table.

        The one bulk path that goes below SQLAlchemy to the driver (executemany on SQLite, COPY on
        PostgreSQL), on the unit of work's own connection and transaction: per-row parameter processing
        would otherwise cost more than encrypting the key.
        """
        raw: Any = self.conn.connection.dbapi_connection
        if self.dialect == "sqlite":
            raw.executemany(
                "INSERT INTO stock_import_rows (import_id, kid, blind_index, ciphertext) VALUES (?, ?, ?, ?)",
                [(import_id, kid, b, c) for b, c in sealed],
            )
        else:
            with (
                raw.cursor() as cur,
                cur.copy(
                    "COPY stock_import_rows (import_id, kid, blind_index, ciphertext)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["int8", "text", "bytea", "bytea"])
                for b, c in sealed:
                    copy.write_row((import_id, kid, b, c))

    def publish(self, import_id: int, product_id: int, now: datetime) -> int:
        """Move the staged keys into stock, skipping any the product already has (or that repeat within
        the import). Sorted by blind index so the UNIQUE index is filled in order. Returns how many.
        The caller has locked the import (``lock_running``) and checked its staged count."""
        s = t.stock_import_rows
        rows = (
            select(
                literal(product_id, Id),
                literal(KeyStatus.AVAILABLE.value, String(16)),
                s.c.kid,
                s.c.blind_index,
                s.c.ciphertext,
                s.c.import_id,
                literal(now, t.UTCDateTime()),
            )
            .where(s.c.import_id == import_id)
            .order_by(s.c.blind_index)
        )
        stmt = (
            dialect_insert(self.dialect, t.keys)
            .from_select(
                ["product_id", "status", "kid", "blind_index", "ciphertext", "import_id", "created_at"], rows
            )
            .on_conflict_do_nothing(index_elements=["product_id", "blind_index"])
        )
        # An INSERT's rowcount must be kept before SQLAlchemy closes the cursor: psycopg 3 resets it to -1.
        added = (self.conn.execute(stmt, execution_options={"preserve_rowcount": True})).rowcount
        self.discard(import_id)
        return added

    def discard(self, import_id: int) -> int:
        s = t.stock_import_rows
        return (self.conn.execute(delete(s).where(s.c.import_id == import_id))).rowcount

    def stale(self, older_than: timedelta) -> list[int]:
        """Running imports whose last heartbeat is older than ``older_than`` by the database's clock."""
        si = t.stock_imports
        q = select(si.c.id).where(
            si.c.status == "running", si.c.heartbeat_at < _db_now(self.dialect, older_than)
        )
        return list((self.conn.execute(q)).scalars().all())

    def abandon(self, import_id: int, older_than: timedelta, now: datetime) -> int:
        """Mark a stale import failed and remove its staged keys, unless it beat (or finished) since it
        was found stale: the guard is re-checked by the UPDATE itself. Returns the staged keys removed,
        or -1 when the import was not abandoned."""
        si = t.stock_imports
        res = self.conn.execute(
            update(si)
            .where(
                si.c.id == import_id,
                si.c.status == "running",
                si.c.heartbeat_at < _db_now(self.dialect, older_than),
            )
            .values(status="failed", finished_at=now)
        )
        if res.rowcount != 1:
            return -1
        return self.discard(import_id)
