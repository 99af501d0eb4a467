from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

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


_T0 = "2026-01-01 00:00:00+00:00"
_SEED_0003: list[tuple[str, dict[str, Any]]] = [
    ("INSERT INTO users (id, channel, external_id, created_at) VALUES (1, 'telegram', '42', :t)", {}),
    (
        "INSERT INTO products (id, name, price, price_stars, delivery_kind, created_at)"
        " VALUES (1, 'p', 100, 50, 'shared', :t)",
        {},
    ),
    (
        "INSERT INTO orders (id, ref, user_id, product_id, quantity, currency, amount, status, created_at,"
        " expires_at) VALUES (1, 'REF1', 1, 1, 1, 'XTR', 50, 'delivered', :t, :t)",
        {},
    ),
    (
        "INSERT INTO keys (id, product_id, status, order_id, kid, blind_index, ciphertext, created_at)"
        " VALUES (:id, 1, :status, :order_id, 'k1', :bidx, :blob, :t)",
        {"id": 7, "status": "shared", "order_id": None, "bidx": b"\x00", "blob": b"\x01"},
    ),
    (
        "INSERT INTO keys (id, product_id, status, order_id, kid, blind_index, ciphertext, created_at)"
        " VALUES (:id, 1, :status, :order_id, 'k1', :bidx, :blob, :t)",
        {"id": 8, "status": "sold", "order_id": 1, "bidx": b"\x02", "blob": b"\x03"},
    ),
    ("INSERT INTO order_shared_keys (order_id, key_id) VALUES (1, 7)", {}),
]


def _seed_0003(conn: Connection) -> None:
    """A shared key an order points at, and a sold key: as a shop at revision 0003 holds them."""
    for stmt, params in _SEED_0003:
        conn.execute(text(stmt), {"t": _T0, **params})


def _keys_and_links(conn: Connection) -> tuple[list[Any], list[Any]]:
    keys = conn.exec_driver_sql("SELECT id, product_id, status, order_id FROM keys ORDER BY id").all()
    links = conn.exec_driver_sql("SELECT order_id, key_id FROM order_shared_keys").all()
    return [tuple(r) for r in keys], [tuple(r) for r in links]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_dropping_the_keys_product_foreign_key_keeps_keys_and_the_orders_pointing_at_them(
    backend: str, tmp_path: Path
) -> None:
    """0004 rebuilds ``keys`` on SQLite; a shared key an order points at must survive it both ways."""
    db = await make_db(backend, tmp_path, create=False)
    try:
        await migrate.upgrade(db, "0003")
        await db.run_committed(_seed_0003)
        before = await db.read(_keys_and_links)
        await migrate.upgrade(db, "0004")
        assert await db.read(_keys_and_links) == before
        await migrate.downgrade(db, "0003")
        assert await db.read(_keys_and_links) == before
        await migrate.upgrade(db, "0004")
        assert await db.read(_keys_and_links) == before
    finally:
        await db.dispose()


def _index_filter(conn: Connection) -> Any:
    ix = next(i for i in inspect(conn).get_indexes("keys") if i["name"] == "ix_keys_order")
    return ix.get("dialect_options", {}).get(f"{conn.dialect.name}_where")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_keys_in_stock_are_not_in_the_order_index(backend: str, tmp_path: Path) -> None:
    db = await make_db(backend, tmp_path, create=False)
    try:
        await migrate.upgrade(db)
        where = await db.read(_index_filter)
        assert where is not None and "order_id is not null" in str(where).lower().replace("(", "")
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_instances_starting_at_once_migrate_one_after_the_other(backend: str, tmp_path: Path) -> None:
    import asyncio

    from core.db import Database

    first = await make_db(backend, tmp_path, create=False)
    others = [Database(first.url.render_as_string(hide_password=False)) for _ in range(3)]
    try:
        # Without a lock they deadlock or fail creating the same tables (bounded, so a regression fails).
        await asyncio.wait_for(asyncio.gather(*(migrate.upgrade(db) for db in [first, *others])), 60)
        head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
        assert await migrate.current_revision(first) == head
    finally:
        for db in [first, *others]:
            await db.dispose()
