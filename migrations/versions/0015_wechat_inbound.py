"""WeChat: wechat_inbound, one row per push handled (its MsgId, or its sender, time and event), so a push
WeChat retries is answered once by whichever instance got it first

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_inbound",
        sa.Column("dedupe_key", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_wechat_inbound_received", "wechat_inbound", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_wechat_inbound_received", table_name="wechat_inbound")
    op.drop_table("wechat_inbound")
