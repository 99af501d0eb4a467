"""keys: no foreign key to products (one locked product check at publish instead); ix_keys_order partial

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOT_NULL = sa.text("order_id IS NOT NULL")


def _rebuilding_keys(change: Callable[[], None]) -> None:
    """Run a batch change of ``keys``. SQLite rebuilds the table for it (copy, drop, rename) and enforces
    foreign keys inside the migration's transaction, where they cannot be switched off: dropping the old
    table fails while ``order_shared_keys`` rows point at it. Those rows are set aside meanwhile (key ids
    are kept by the copy) and put back after, checked against the new table."""
    if op.get_bind().dialect.name != "sqlite":
        change()
        return
    op.execute("CREATE TEMP TABLE _order_shared_keys_0004 AS SELECT order_id, key_id FROM order_shared_keys")
    op.execute("DELETE FROM order_shared_keys")
    change()
    op.execute(
        "INSERT INTO order_shared_keys (order_id, key_id)"
        " SELECT order_id, key_id FROM _order_shared_keys_0004"
    )
    op.execute("DROP TABLE _order_shared_keys_0004")


def _drop_product_fk() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.drop_constraint(op.f("fk_keys_product_id_products"), type_="foreignkey")


def _add_product_fk() -> None:
    with op.batch_alter_table("keys") as batch:
        batch.create_foreign_key(op.f("fk_keys_product_id_products"), "products", ["product_id"], ["id"])


def upgrade() -> None:
    _rebuilding_keys(_drop_product_fk)
    op.drop_index("ix_keys_order", table_name="keys")
    op.create_index("ix_keys_order", "keys", ["order_id"], postgresql_where=_NOT_NULL, sqlite_where=_NOT_NULL)


def downgrade() -> None:
    op.drop_index("ix_keys_order", table_name="keys")
    op.create_index("ix_keys_order", "keys", ["order_id"])
    # Keys of a product that no longer exists would make the foreign key fail: none can exist, since
    # publishing refuses a missing product and products are never deleted.
    _rebuilding_keys(_add_product_fk)
