"""WeChat delivery: wechat_windows (each user's customer-service window as the shop last knew it), the
outbox's ``progress`` (steps of a message already done) and the index that finds a user's parked messages

Revision ID: 0017
Revises: 0015
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
# 0016 is another piece of issue 12, written beside this one: whichever is merged second names the other
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STAMP = sa.DateTime(timezone=True)
_PARKED = sa.text("status = 'parked'")


def upgrade() -> None:
    op.create_table(
        "wechat_windows",
        sa.Column("user_id", _ID, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("message_at", _STAMP),
        sa.Column("message_used", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("event_at", _STAMP),
        sa.Column("event_used", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("paid_at", _STAMP),
        sa.Column("closed_at", _STAMP),
    )
    op.add_column("outbox", sa.Column("progress", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index(
        "ix_outbox_parked_user", "outbox", ["user_id"], sqlite_where=_PARKED, postgresql_where=_PARKED
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_parked_user", table_name="outbox")
    # no version before this one knows "parked": those messages are simply due again
    op.execute("UPDATE outbox SET status = 'pending' WHERE status = 'parked'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("progress")
    op.drop_table("wechat_windows")
