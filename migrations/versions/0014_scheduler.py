"""Scheduler: job_runs (each job's last run), job_claims (once-per-period runs), reminders (per order and
stage), stock_alerts (the level last alerted per product), and an index on memberships' end

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("runs", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_started_at", _STAMP),
        sa.Column("last_finished_at", _STAMP),
        sa.Column("last_ok", sa.Boolean()),
        sa.Column("last_error", sa.String(500)),
        sa.Column("last_result", sa.Integer()),
    )
    op.create_table(
        "job_claims",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("period", sa.String(64), primary_key=True),
        sa.Column("claimed_at", _STAMP, nullable=False),
    )
    op.create_table(
        "reminders",
        sa.Column("order_id", _ID, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.create_table(
        "stock_alerts",
        sa.Column("product_id", _ID, sa.ForeignKey("products.id"), primary_key=True),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("alerted_at", _STAMP, nullable=False),
    )
    op.create_index(
        "ix_orders_membership_expires",
        "orders",
        ["membership_expires_at"],
        postgresql_where=sa.text("membership_expires_at IS NOT NULL"),
        sqlite_where=sa.text("membership_expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_membership_expires", table_name="orders")
    op.drop_table("stock_alerts")
    op.drop_table("reminders")
    op.drop_table("job_claims")
    op.drop_table("job_runs")
