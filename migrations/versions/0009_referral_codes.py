"""referral_codes: each user's random referral code (made at their first /invite) and its opens and starts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("opens", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("starts", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_referral_codes_user_id_users"),
        sa.PrimaryKeyConstraint("user_id", name="pk_referral_codes"),
        sa.UniqueConstraint("code", name="uq_referral_codes_code"),
    )


def downgrade() -> None:
    op.drop_table("referral_codes")
