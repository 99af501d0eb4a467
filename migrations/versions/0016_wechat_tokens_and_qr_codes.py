"""WeChat: wechat_tokens, the official account's access_token shared by every instance (with the lease of
the one renewing it), and wechat_qr_codes, each distributor's permanent QR code made once

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_tokens",
        sa.Column("app_id", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(1024)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("refresh_at", sa.DateTime(timezone=True)),
        sa.Column("lease_holder", sa.String(64)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "wechat_qr_codes",
        sa.Column("app_id", sa.String(64), primary_key=True),
        sa.Column("scene", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(512)),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("wechat_qr_codes")
    op.drop_table("wechat_tokens")
