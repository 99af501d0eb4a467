"""broadcasts.runner, runner_until, progress_shown: which process leads a broadcast under way (writes its
recipients, edits its progress message), until when, and what the progress message says

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("broadcasts", sa.Column("runner", sa.String(length=64), nullable=True))
    op.add_column("broadcasts", sa.Column("runner_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("broadcasts", sa.Column("progress_shown", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("progress_shown")
        batch.drop_column("runner_until")
        batch.drop_column("runner")
