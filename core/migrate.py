"""Run Alembic migrations from inside the app (``keyshop db upgrade``, start-up, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from core.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _go(connection: Connection, fn: str, revision: str) -> None:
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
