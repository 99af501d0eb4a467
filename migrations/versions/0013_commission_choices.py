"""Commission choices: products.commission_rates (a product's own rates), orders.commission_rates (what a
delivery applied, for the ledger check), payments.earns_commission (an admin's "mark paid" with commission)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("products", sa.Column("commission_rates", sa.String(length=32), nullable=True))
    op.add_column("orders", sa.Column("commission_rates", sa.String(length=32), nullable=True))
    op.add_column(
        "payments",
        sa.Column("earns_commission", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("earns_commission")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("commission_rates")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("commission_rates")
