"""payers on payments, durable payment notices, chosen vs followed language

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("language_chosen", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("payer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
        batch.create_foreign_key(op.f("fk_payments_payer_id_users"), "users", ["payer_id"], ["id"])
    # Before this revision only the order's owner could be recorded as the payer.
    op.execute(
        "UPDATE payments SET payer_id ="
        " (SELECT orders.user_id FROM orders WHERE orders.id = payments.order_id)"
    )
    op.create_table(
        "payment_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("charge_id", sa.String(length=128), nullable=False),
        sa.Column("payer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("order_ref", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=255)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(["payer_id"], ["users.id"], name=op.f("fk_payment_notices_payer_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_notices")),
        sa.UniqueConstraint("provider", "charge_id", name="uq_payment_notices_provider_charge"),
    )
    op.create_index(
        "ix_payment_notices_status_next", "payment_notices", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_payment_notices_status_next", table_name="payment_notices")
    op.drop_table("payment_notices")
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(op.f("fk_payments_payer_id_users"), type_="foreignkey")
        batch.drop_column("payer_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language_chosen")
