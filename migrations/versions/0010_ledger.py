"""The double-entry ledger (ledger_accounts, ledger_postings, ledger_entries) and commissions

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("owner_id", _ID, nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_ledger_accounts_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
    )
    owned, shop = sa.text("owner_id IS NOT NULL"), sa.text("owner_id IS NULL")
    op.create_index(
        "uq_ledger_accounts_owner_kind_currency",
        "ledger_accounts",
        ["owner_id", "kind", "currency"],
        unique=True,
        sqlite_where=owned,
        postgresql_where=owned,
    )
    op.create_index(
        "uq_ledger_accounts_shop_kind_currency",
        "ledger_accounts",
        ["kind", "currency"],
        unique=True,
        sqlite_where=shop,
        postgresql_where=shop,
    )
    op.create_table(
        "ledger_postings",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("order_id", _ID, nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", _STAMP, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_ledger_postings_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_postings_key")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("posting_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["posting_id"], ["ledger_postings.id"], name=op.f("fk_ledger_entries_posting_id_ledger_postings")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_entries_account_id_ledger_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index("ix_ledger_entries_posting", "ledger_entries", ["posting_id"])
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account_id"])
    op.create_table(
        "commissions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("order_id", _ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", _ID, nullable=False),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", _STAMP, nullable=False),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("settled_at", _STAMP, nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_commissions_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"], ["users.id"], name=op.f("fk_commissions_beneficiary_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commissions")),
        sa.UniqueConstraint("order_id", "level", name="uq_commissions_order_level"),
    )
    op.create_index("ix_commissions_status_due", "commissions", ["status", "due_at"])
    op.create_index("ix_commissions_beneficiary", "commissions", ["beneficiary_id"])


def downgrade() -> None:
    op.drop_index("ix_commissions_beneficiary", table_name="commissions")
    op.drop_index("ix_commissions_status_due", table_name="commissions")
    op.drop_table("commissions")
    op.drop_index("ix_ledger_entries_account", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_posting", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_postings")
    op.drop_index("uq_ledger_accounts_shop_kind_currency", table_name="ledger_accounts")
    op.drop_index("uq_ledger_accounts_owner_kind_currency", table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
