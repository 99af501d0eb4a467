"""WeChat Pay: wechat_pay_orders, the orders opened at WeChat Pay (prepay or Native QR), for the
reconciliation job that asks about them and closes them once their reservation is over; an index on
payments by status and provider, for the refunds a channel still owes

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_pay_orders",
        sa.Column("order_ref", sa.String(32), primary_key=True),
        sa.Column("trade_type", sa.String(8), nullable=False),
        sa.Column("state", sa.String(8), nullable=False, server_default=sa.text("'open'")),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True)),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_wechat_pay_orders_open", "wechat_pay_orders", ["state", "checked_at"])
    op.create_index("ix_payments_status_provider", "payments", ["status", "provider"])


def downgrade() -> None:
    op.drop_index("ix_payments_status_provider", table_name="payments")
    op.drop_index("ix_wechat_pay_orders_open", table_name="wechat_pay_orders")
    op.drop_table("wechat_pay_orders")
