from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_migrated_schema_is_exactly_the_table_definitions(backend: str, tmp_path: Path) -> None:
    db = await make_db(backend, tmp_path, create=False)
    try:
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert diff == []
        assert set(metadata.tables) <= tables
    finally:
        await db.dispose()
