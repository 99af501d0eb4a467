"""distributor_settings: an admin's per-distributor commission rates and block; users by referrer

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "distributor_settings",
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("commission_rates", sa.String(length=32), nullable=True),
        sa.Column("blocked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_distributor_settings_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", name="pk_distributor_settings"),
    )
    op.create_index("ix_users_referrer", "users", ["referrer_id"])


def downgrade() -> None:
    op.drop_index("ix_users_referrer", table_name="users")
    op.drop_table("distributor_settings")
