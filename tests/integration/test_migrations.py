from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from core import migrate
from core.tables import metadata
from tests.conftest import BACKENDS, make_db


@pytest.mark.parametrize("backend", BACKENDS)
async def test_every_revision_upgrades_downgrades_and_upgrades_again(backend: str, tmp_path: Path) -> None:
    db = await make_db(backend, tmp_path, create=False)
    try:
        revisions = list(
            reversed(list(ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()))
        )
        assert revisions, "no migrations found"
        for rev in revisions:
            await migrate.upgrade(db, rev.revision)
            await migrate.downgrade(db, rev.down_revision or "base")
            await migrate.upgrade(db, rev.revision)
        assert await migrate.current_revision(db) == revisions[-1].revision
    finally:
        await db.dispose()


def _schema_diff_and_tables(conn: Connection) -> tuple[list[Any], set[str]]:
    diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    return diff, set(inspect(conn).get_table_names())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_migrated_schema_is_exactly_the_table_definitions(backend: str, tmp_path: Path) -> None:
    db = await make_db(backend, tmp_path, create=False)
    try:
        await migrate.upgrade(db)
        diff, tables = await db.read(_schema_diff_and_tables)
        assert diff == []
        assert set(metadata.tables) <= tables
    finally:
        await db.dispose()
