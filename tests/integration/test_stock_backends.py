"""The stock import's bulk paths differ per database (executemany vs COPY): the rules must hold on both."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from core import tables as t
from core.db import Database
from core.errors import ProductNotFound
from core.models import STARS, ImportReport
from core.services import Services
from tests.conftest import buyer, query, stocked
from tests.unit.test_stock import ExplodingStream, staged_rows, total_keys


async def test_import_skips_duplicates_within_the_file_and_against_stock(any_shop: Services) -> None:
    pid = await stocked(any_shop, 2)  # KEY-0000, KEY-0001
    rep = await any_shop.stock.import_keys(pid, io.BytesIO(b"KEY-0001\nN1\nN1\n\nN2\n"))
    assert (rep.added, rep.duplicates, rep.invalid) == (2, 2, 1)
    assert await any_shop.stock.available(pid) == 4
    assert await staged_rows(any_shop) == 0


async def test_a_failed_import_changes_no_stock(any_shop: Services) -> None:
    pid = await stocked(any_shop, 1)
    with pytest.raises(OSError):
        await any_shop.stock.import_keys(pid, ExplodingStream(after=30), batch_size=7)
    assert await total_keys(any_shop) == 1 and await staged_rows(any_shop) == 0


async def test_imported_keys_are_sold_and_revealed_intact(any_shop: Services) -> None:
    pid = await stocked(any_shop, 0)
    await any_shop.stock.import_keys(pid, io.BytesIO("卡密-Ω-1\n".encode()))
    uid = await buyer(any_shop)
    o = await any_shop.checkout.checkout(uid, pid, 1, STARS)
    await any_shop.payments.confirm_payment("telegram", "c", o.ref, o.amount, STARS)
    assert (await any_shop.orders.reveal(o.ref, user_id=uid, actor="u", reason="t")).keys == ["卡密-Ω-1"]


def _delete_product_behind_the_shops_back(db: Database, product_id: int) -> None:
    """Damage no keyshop code does (products are taken off sale, never deleted): the row removed on a
    connection of its own with foreign-key checks off."""
    if db.is_sqlite:
        import sqlite3

        assert db.url.database
        c = sqlite3.connect(db.url.database)  # foreign keys are off on a plain sqlite3 connection
        try:
            c.execute("DELETE FROM products WHERE id = ?", (product_id,))
            c.commit()
        finally:
            c.close()
    else:
        import psycopg

        with psycopg.connect(db.url.set(drivername="postgresql").render_as_string(hide_password=False)) as c:
            c.execute("SET session_replication_role = replica")  # no foreign-key triggers
            c.execute("DELETE FROM products WHERE id = %s", (product_id,))


async def test_publishing_refuses_a_product_that_no_longer_exists_and_changes_nothing(
    any_shop: Services,
) -> None:
    pid = await stocked(any_shop, 0)

    def product_vanishes(report: ImportReport) -> None:
        if report.lines == 2:  # the first batch is staged; the product goes before publishing
            _delete_product_behind_the_shops_back(any_shop.ctx.db, pid)

    with pytest.raises(ProductNotFound):
        await any_shop.stock.import_keys(
            pid, io.BytesIO(b"A-1\nA-2\nA-3\n"), batch_size=2, progress=product_vanishes
        )
    assert await total_keys(any_shop) == 0 and await staged_rows(any_shop) == 0
    imports = await query(any_shop, select(t.stock_imports.c.status, t.stock_imports.c.added))
    assert [tuple(r) for r in imports] == [("failed", 0)]
    audit = await query(any_shop, select(t.audit_log.c.action).where(t.audit_log.c.product_id == pid))
    assert "keys_imported" not in [r[0] for r in audit]
