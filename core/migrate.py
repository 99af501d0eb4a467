"""Run Alembic migrations from inside the app (``keyshop db upgrade``, start-up, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


# Any constant: the PostgreSQL advisory lock that several instances starting at once take in turn.
_MIGRATION_LOCK = 0x6B657973686F70  # "keyshop"


def _go(connection: Connection, fn: str, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Several instances starting at the same moment would otherwise each create the same tables (and
        # all but one fail). Held until this transaction ends; the next one then finds nothing to do.
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    getattr(command, fn)(cfg, revision)


async def _run(db: Database, fn: str, revision: str) -> None:
    # A write transaction: on SQLite, BEGIN IMMEDIATE keeps two starting processes from migrating at once.
    await db.run_committed(_go, fn, revision)


async def upgrade(db: Database, revision: str = "head") -> None:
    await _run(db, "upgrade", revision)


async def downgrade(db: Database, revision: str) -> None:
    await _run(db, "downgrade", revision)


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    return await db.read(current)
