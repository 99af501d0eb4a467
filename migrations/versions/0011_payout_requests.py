"""Withdrawals of commission: payout_requests

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payout_requests",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payout_amount", sa.BigInteger(), nullable=False),
        sa.Column("payout_currency", sa.String(length=8), nullable=False),
        sa.Column("details", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("paid_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("decided_at", _STAMP, nullable=True),
        sa.Column("paid_at", _STAMP, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_payout_requests_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_requests")),
        sa.UniqueConstraint("request_key", name="uq_payout_requests_request_key"),
    )
    open_ = sa.text("status IN ('requested', 'approved')")
    op.create_index(
        "uq_payout_requests_open",
        "payout_requests",
        ["user_id", "currency"],
        unique=True,
        sqlite_where=open_,
        postgresql_where=open_,
    )
    op.create_index("ix_payout_requests_status_id", "payout_requests", ["status", "id"])
    op.create_index("ix_payout_requests_user", "payout_requests", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_payout_requests_user", table_name="payout_requests")
    op.drop_index("ix_payout_requests_status_id", table_name="payout_requests")
    op.drop_index("uq_payout_requests_open", table_name="payout_requests")
    op.drop_table("payout_requests")
