"""users.username: the channel's public handle, for admins to look buyers up by @name

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("username", sa.String(length=32), nullable=True))
    op.create_index("ix_users_channel_username", "users", ["channel", "username"])


def downgrade() -> None:
    op.drop_index("ix_users_channel_username", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("username")
