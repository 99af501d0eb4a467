"""Table definitions (SQLAlchemy Core). The domain objects in ``core.models`` know nothing of these.

Migrations in ``migrations/`` create exactly this schema; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite has no 64-bit "BIGSERIAL"; INTEGER PRIMARY KEY is its rowid (already 64-bit).
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are always timezone-aware UTC in Python; stored as timestamptz on PostgreSQL and as
    naive UTC text on SQLite (so that string comparison is time comparison)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @staticmethod
    def sqlite_fast_bind(value: datetime) -> str:
        """The bind processing above and SQLite's DATETIME text in one step (the same text:
        ``YYYY-MM-DD HH:MM:SS.ffffff``), for prebuilt statements (``core.sql``). Formatted by hand:
        ``isoformat`` and ``replace`` cost several times as much, on every timestamp of every order."""
        if value.tzinfo is not UTC:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the database")
            value = value.astimezone(UTC)
        return _SQLITE_STAMP % (
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
        )

    @staticmethod
    def sqlite_fast_result(value: str) -> datetime:
        # parsed with its offset: several times faster than parsing naive, then replace(tzinfo=UTC)
        return datetime.fromisoformat(value + "+00:00")


_SQLITE_STAMP = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class Rates(TypeDecorator[tuple[int, ...]]):
    """Commission rates, basis points per level (``(1000, 500)``: 10 %, then 5 %), stored as the text
    ``1000,500``: whole numbers only, never a float."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: tuple[int, ...] | None, dialect: Dialect) -> str | None:
        return None if value is None else ",".join(str(int(v)) for v in value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> tuple[int, ...] | None:
        return None if value is None else tuple(int(v) for v in value.split(",") if v)


users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("language", String(16)),
    # True once the user picked a language with /language; until then the channel's current language
    # (Telegram's language_code) is followed and stored here as it changes.
    Column("language_chosen", Boolean, nullable=False, server_default=text("false")),
    Column("phone", String(32)),
    Column("blocklisted", Boolean, nullable=False, server_default=text("false")),
    Column("bot_blocked", Boolean, nullable=False, server_default=text("false")),
    Column("referrer_id", Id, ForeignKey("users.id")),
    Column("created_at", UTCDateTime, nullable=False),
    # The channel's public handle (a Telegram @username), lower case without the "@", as last seen in an
    # update from them: admins look buyers up by it (a bot cannot ask Telegram who has a username).
    Column("username", String(32)),
    UniqueConstraint("channel", "external_id", name="uq_users_channel_external_id"),
    Index("ix_users_channel_username", "channel", "username"),
    Index("ix_users_referrer", "referrer_id"),  # a distributor's referred users (their funnel)
)

categories = Table(
    "categories",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
)

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True),
    Column("category_id", Id, ForeignKey("categories.id")),
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("price", BigInteger, nullable=False),
    Column("price_stars", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("delivery_kind", String(16), nullable=False),
    Column("validity_days", Integer),
    Column("min_qty", Integer, nullable=False, server_default=text("1")),
    Column("max_qty", Integer, nullable=False, server_default=text("10")),
    Column("low_stock_threshold", Integer, nullable=False, server_default=text("0")),
    Column("user_limit", Integer),
    Column("user_limit_hours", Integer),
    Column("daily_limit", Integer),
    Column("requires_phone", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("commission_rates", Rates),  # NULL: COMMISSION_RATES (or a distributor's own rates)
)

stock_imports = Table(
    "stock_imports",
    metadata,
    Column("id", Id, primary_key=True),
    Column("product_id", Id, ForeignKey("products.id"), nullable=False),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("actor", String(64), nullable=False),
    Column("lines", BigInteger, nullable=False, server_default=text("0")),
    Column("added", BigInteger, nullable=False, server_default=text("0")),
    Column("duplicates", BigInteger, nullable=False, server_default=text("0")),
    Column("invalid", BigInteger, nullable=False, server_default=text("0")),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)

# Keys of an import in progress, encrypted, not yet checked for duplicates. Publishing moves them into
# ``keys`` with one INSERT ... SELECT sorted by blind index, so stock changes all at once (or not at all).
stock_import_rows = Table(
    "stock_import_rows",
    metadata,
    Column("id", Id, primary_key=True),
    # No foreign keys on import ids: PostgreSQL checks each with a per-row trigger (seconds per million
    # keys), and these are bookkeeping, not integrity.
    Column("import_id", Id, nullable=False),
    Column("kid", String(32), nullable=False),
    Column("blind_index", LargeBinary(16), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Index("ix_stock_import_rows_import", "import_id"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ref", String(24), nullable=False, unique=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("product_id", Id, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("revealed_at", UTCDateTime),
    Column("membership_expires_at", UTCDateTime),
    # What its delivery's commissions applied per level (0: nobody earned there), for ``keyshop ledger
    # check``; NULL when the buyer had no referrer chain.
    Column("commission_rates", Rates),
    Index("ix_orders_user_product_created", "user_id", "product_id", "created_at"),
    Index("ix_orders_product_created", "product_id", "created_at"),
    Index("ix_orders_status_expires", "status", "expires_at"),
    # Memberships the reminder job scans (only rows with an end date are indexed).
    Index(
        "ix_orders_membership_expires",
        "membership_expires_at",
        postgresql_where=text("membership_expires_at IS NOT NULL"),
        sqlite_where=text("membership_expires_at IS NOT NULL"),
    ),
)

keys = Table(
    "keys",
    metadata,
    Column("id", Id, primary_key=True),
    # No foreign key: PostgreSQL checks one with a trigger on every imported key (with it and the full
    # order index below, a million-key import took 19.5 s instead of 15 s). Publishing an import locks its
    # product once instead (ImportRepo.lock_product); a shared key is set for a product read in its
    # transaction; and products are never deleted, only taken off sale.
    Column("product_id", Id, nullable=False),
    Column("status", String(16), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("kid", String(32), nullable=False),
    Column("blind_index", LargeBinary(16), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("import_id", Id),  # provenance: which stock_imports row brought this key (no FK, see above)
    Column("created_at", UTCDateTime, nullable=False),
    Column("sold_at", UTCDateTime),
    UniqueConstraint("product_id", "blind_index", name="uq_keys_product_blind_index"),
    Index("ix_keys_product_status_id", "product_id", "status", "id"),
    # Keys in stock have no order: only the ones reserved, sold or voided for an order are indexed.
    Index(
        "ix_keys_order",
        "order_id",
        sqlite_where=text("order_id IS NOT NULL"),
        postgresql_where=text("order_id IS NOT NULL"),
    ),
)

# Shared-key orders point at the one key they were given (unique-key orders are found through keys.order_id).
order_shared_keys = Table(
    "order_shared_keys",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("key_id", Id, ForeignKey("keys.id"), nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("charge_id", String(128), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("order_ref", String(128), nullable=False),
    # Whoever paid (not necessarily the order's owner: a forwarded invoice can be paid by anyone). A refund
    # goes back to this user's charge.
    Column("payer_id", Id, ForeignKey("users.id")),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("refunded_at", UTCDateTime),
    # An admin's "mark paid" earns commission only when they chose so (other providers' always do).
    Column("earns_commission", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("provider", "charge_id", name="uq_payments_provider_charge"),
    Index("ix_payments_order", "order_id"),
    Index("ix_payments_status_provider", "status", "provider"),  # the charges owed back, by channel
)

# Every payment notice a channel receives (Telegram successful_payment, a Stars ledger entry, a WeChat Pay
# notify), written durably before it is processed. Processing is retried until it succeeds, so a charge is
# never lost because handling it failed once (database locked, a crash half-way).
payment_notices = Table(
    "payment_notices",
    metadata,
    Column("id", Id, primary_key=True),
    Column("provider", String(16), nullable=False),
    Column("charge_id", String(128), nullable=False),
    Column("payer_id", Id, ForeignKey("users.id")),
    Column("order_ref", String(128), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("raw", JSON, nullable=False),  # the notice as received (never a key: payments carry none)
    Column("status", String(16), nullable=False, server_default="pending"),  # pending | done
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(255)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime),
    UniqueConstraint("provider", "charge_id", name="uq_payment_notices_provider_charge"),
    Index("ix_payment_notices_status_next", "status", "next_attempt_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("product_id", Id),
    Column("order_id", Id),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_order", "order_id"),
    Index("ix_audit_at", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),  # never a key: messages with keys are rendered at send time
    # pending | sent | failed | cancelled | parked (waits for the user to write: see ix_outbox_parked_user)
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # Set on a broadcast's messages (no foreign key: a bulk insert pays no per-row check). Sent in their own
    # lane, after every due message of the shop's own (keys, refunds), so a broadcast never delays a buyer.
    Column("broadcast_id", Id),
    # Steps of the message already done, for one sent in several (WeChat: a refund paid back, then its text;
    # keys in several ≤ 2 KB texts): a message taken up again after a retry or a park goes on from there.
    Column("progress", Integer, nullable=False, server_default=text("0")),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    # status ``parked``: a channel that may only write within a window the user opens (WeChat's 48 hours)
    # was refused; the user's parked messages are released when they next write, found through this.
    Index(
        "ix_outbox_parked_user",
        "user_id",
        sqlite_where=text("status = 'parked'"),
        postgresql_where=text("status = 'parked'"),
    ),
    # Each lane's due messages (the shop's: broadcast_id IS NULL; a broadcast's), a broadcast's counts by
    # status, and its cancel
    Index("ix_outbox_broadcast_status_next", "broadcast_id", "status", "next_attempt_at"),
)


# A message an admin sends to an audience of buyers (``core.services.broadcasts``). Its messages are outbox
# rows with its id, written in chunks by keyset over users (``enqueued_upto``: the last user id written), so
# no process ever holds the audience; its counts are those rows' statuses, kept here once it ends.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("audience", String(16), nullable=False),  # all | product | active
    Column("product_id", Id),  # audience "product"
    Column("days", Integer),  # audience "active"
    Column("text", Text, nullable=False),  # HTML, as the recipients get it
    Column("status", String(16), nullable=False),  # draft | enqueuing | sending | cancelled | done
    Column("created_by", String(64), nullable=False),
    Column("recipients", BigInteger, nullable=False, server_default=text("0")),
    Column("enqueued_upto", BigInteger, nullable=False, server_default=text("0")),
    Column("sent", BigInteger, nullable=False, server_default=text("0")),
    Column("failed", BigInteger, nullable=False, server_default=text("0")),
    Column("blocked", BigInteger, nullable=False, server_default=text("0")),
    Column("cancelled", BigInteger, nullable=False, server_default=text("0")),
    # the admin's progress message, edited as it goes (and after a restart)
    Column("progress_chat", String(64)),
    Column("progress_message_id", BigInteger),
    Column("progress_language", String(16)),
    Column("progress_shown", String(64)),  # a digest of what the progress message says now
    # The one process leading it (writing its recipients, editing its progress message), until when: a
    # second bot process takes it up only once the first let go (stopped) or its lease ran out (crashed).
    Column("runner", String(64)),
    Column("runner_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Index("ix_broadcasts_status", "status"),
)


# Small named positions that must survive restarts (e.g. how far Telegram's Stars ledger was reconciled).
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# The shop's staff besides its owners (``ADMIN_IDS``, kept in settings, never here): who, in which channel,
# with which role. An operator's scope is the products and categories listed in ``staff_scopes``; none
# listed means the whole shop.
staff = Table(
    "staff",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("external_id", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # admin | operator
    Column("added_by", String(64), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "external_id", name="uq_staff_channel_external_id"),
)

staff_scopes = Table(
    "staff_scopes",
    metadata,
    Column("staff_id", Id, ForeignKey("staff.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # product | category
    Column("target_id", Id, primary_key=True),
)

# A user's referral code (their invite link's ``r<code>``), made at their first /invite: random, never their
# channel id. ``opens`` counts /start with the code (anyone, attributed or not), ``starts`` the new users it
# attributed; both only ever incremented in SQL.
referral_codes = Table(
    "referral_codes",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("code", String(16), nullable=False),
    Column("opens", BigInteger, nullable=False, server_default=text("0")),
    Column("starts", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("code", name="uq_referral_codes_code"),
)

# The double-entry ledger (``core.ledger``). An account belongs to a user (a distributor) or, with no owner,
# to the shop; it holds one currency. A posting is a set of entries summing to zero per currency, written in
# one transaction with what caused it; its ``key`` makes it happen once (a replayed delivery posts nothing).
# Balances are sums of entries: nothing here is ever updated, only added.
ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("owner_id", Id, ForeignKey("users.id")),  # NULL: the shop's own account
    # commission_expense | pending | available | spent | withdrawing | paid_out
    Column("kind", String(24), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(
        "uq_ledger_accounts_owner_kind_currency",
        "owner_id",
        "kind",
        "currency",
        unique=True,
        sqlite_where=text("owner_id IS NOT NULL"),
        postgresql_where=text("owner_id IS NOT NULL"),
    ),
    Index(
        "uq_ledger_accounts_shop_kind_currency",
        "kind",
        "currency",
        unique=True,
        sqlite_where=text("owner_id IS NULL"),
        postgresql_where=text("owner_id IS NULL"),
    ),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("key", String(96), nullable=False, unique=True),  # e.g. "commission:<order id>:<level>"
    # commission | reversal | settlement | clawback | payout_requested | payout_rejected | payout_paid
    Column("kind", String(24), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("actor", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("posting_id", Id, ForeignKey("ledger_postings.id"), nullable=False),
    Column("account_id", Id, ForeignKey("ledger_accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),  # signed minor units (Stars whole) of ``currency``
    Column("currency", String(8), nullable=False),
    Index("ix_ledger_entries_posting", "posting_id"),
    Index("ix_ledger_entries_account", "account_id"),
)

# One row per commission owed on a delivered order and level (UNIQUE: never twice for one order). Its
# status moves only by UPDATEs guarded by the old status (the row is the claim): pending -> available at
# settlement, pending -> reversed or available -> clawed_back on a refund, each with its posting.
commissions = Table(
    "commissions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("level", Integer, nullable=False),
    Column("beneficiary_id", Id, ForeignKey("users.id"), nullable=False),
    Column("base", BigInteger, nullable=False),  # the amount paid it was computed on
    Column("rate_bp", Integer, nullable=False),  # basis points: 1000 = 10 %
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("status", String(16), nullable=False),  # pending | available | reversed | clawed_back
    Column("due_at", UTCDateTime, nullable=False),  # when the holding period ends
    Column("created_at", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime),
    UniqueConstraint("order_id", "level", name="uq_commissions_order_level"),
    Index("ix_commissions_status_due", "status", "due_at"),
    Index("ix_commissions_beneficiary", "beneficiary_id"),
)

# A distributor's withdrawal request (``core.services.payouts``). Its status moves only by UPDATEs guarded by
# the old status: requested -> approved -> paid, or requested/approved -> rejected; each money move has its
# ledger posting in the same transaction. ``request_key`` (UNIQUE) makes a replayed request one request; the
# partial unique index lets a distributor have one open request per currency.
payout_requests = Table(
    "payout_requests",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("currency", String(8), nullable=False),  # the ledger currency withdrawn
    Column("amount", BigInteger, nullable=False),  # in that currency's units (Stars whole)
    Column("payout_amount", BigInteger, nullable=False),  # what the admin pays, in payout_currency
    Column("payout_currency", String(8), nullable=False),  # the shop currency
    Column("details", String(200), nullable=False),  # where to pay (typed by the distributor): personal data
    Column("status", String(16), nullable=False),  # requested | approved | paid | rejected
    Column("request_key", String(64), nullable=False),
    Column("reference", String(128)),  # the admin's payment reference (paid)
    Column("reason", String(200)),  # why it was rejected
    Column("decided_by", String(64)),  # who approved or rejected it
    Column("paid_by", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("paid_at", UTCDateTime),
    UniqueConstraint("request_key", name="uq_payout_requests_request_key"),
    Index(
        "uq_payout_requests_open",
        "user_id",
        "currency",
        unique=True,
        sqlite_where=text("status IN ('requested', 'approved')"),
        postgresql_where=text("status IN ('requested', 'approved')"),
    ),
    Index("ix_payout_requests_status_id", "status", "id"),
    Index("ix_payout_requests_user", "user_id", "id"),
)


# What the admins set for one distributor (``/distributors``): ``commission_rates``, basis points per level
# as "1200,600", replaces COMMISSION_RATES level by level for the commissions they earn (NULL: the shop's);
# ``blocked``: they earn no commission (their share stays the shop's; the level above them still earns).
# No row: the shop's rates, not blocked.
distributor_settings = Table(
    "distributor_settings",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("commission_rates", String(32)),
    Column("blocked", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(64), nullable=False),
)

# The scheduler's own bookkeeping (``keyshop jobs list``): one row per job, updated by whichever scheduler
# process ran it. Due dates never live here (they are the shop's rows: orders, commissions, …).
job_runs = Table(
    "job_runs",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("runs", Integer, nullable=False, server_default=text("0")),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("last_started_at", UTCDateTime),
    Column("last_finished_at", UTCDateTime),
    Column("last_ok", Boolean),
    Column("last_error", String(500)),
    Column("last_result", Integer),
)

# A periodic run that must happen once per period whichever scheduler fires first: the daily summary of
# a date, the payout run of a scheduled slot. Inserted once (the primary key): the process whose insert
# went through does the work, any other skips.
job_claims = Table(
    "job_claims",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("period", String(64), primary_key=True),
    Column("claimed_at", UTCDateTime, nullable=False),
)

# A WeChat push already taken (its MsgId, or its sender + CreateTime + event for an event): WeChat retries a
# push it got no answer to within 5 s, possibly to another instance. Inserted once (the primary key) before
# the push is handled: the instance whose insert went through answers it, any other answers "success".
wechat_inbound = Table(
    "wechat_inbound",
    metadata,
    Column("dedupe_key", String(128), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_wechat_inbound_received", "received_at"),  # forgetting old ones
)

# The official account's access_token, one row per AppID, shared by every instance (WeChat allows one live
# stable token; handlers/wechat/tokens.py). ``refresh_at``: when it is due for renewal, about 5 minutes
# before ``expires_at``. ``lease_holder``/``lease_until``: the one instance renewing it now; a crashed one's
# lease runs out. ``token`` is NULL before the first fetch and after WeChat rejected it.
wechat_tokens = Table(
    "wechat_tokens",
    metadata,
    Column("app_id", String(64), primary_key=True),
    Column("token", String(1024)),  # WeChat: keep room for at least 512 characters
    Column("expires_at", UTCDateTime),
    Column("refresh_at", UTCDateTime),
    Column("lease_holder", String(64)),
    Column("lease_until", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A permanent parametric QR code of the official account (a distributor's ``ref:<code>``): WeChat allows
# 100,000 per account for ever, so each scene gets one, made once. ``url`` (the showqrcode link) is NULL
# while the instance that claimed the scene at ``claimed_at`` is asking WeChat for it.
wechat_qr_codes = Table(
    "wechat_qr_codes",
    metadata,
    Column("app_id", String(64), primary_key=True),
    Column("scene", String(64), primary_key=True),
    Column("url", String(512)),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime),
)

# A WeChat user's customer-service window as the shop last knew it (``core.services.wechat_windows``): when
# they last wrote (48 h, 5 messages), tapped the menu, followed or scanned (1 minute, 3 messages), paid with
# WeChat Pay (48 h, no count), and how many messages each opening has carried. ``closed_at``: WeChat refused
# a message (45015/45047) or the window had run out, after the latest opening; the user's messages are
# parked until the next. WeChat's answer is the truth; this only saves calls known to fail.
wechat_windows = Table(
    "wechat_windows",
    metadata,
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("message_at", UTCDateTime),
    Column("message_used", Integer, nullable=False, server_default=text("0")),
    Column("event_at", UTCDateTime),
    Column("event_used", Integer, nullable=False, server_default=text("0")),
    Column("paid_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
)

# What a reminder job sent, one row per order and stage (``d3``, ``d1``, ``expired`` for memberships,
# ``invoice`` for an invoice about to expire): inserted in the transaction that writes the outbox message,
# so a stage is sent once per order whatever number of schedulers run. ``skipped``: a stage passed while
# the shop was down, recorded so that only the latest applicable stage is sent.
reminders = Table(
    "reminders",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("stage", String(16), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("skipped", Boolean, nullable=False, server_default=text("false")),
)

# The last stock level an alert was sent for, per product: ``low`` (at or below its threshold) or ``out``
# (none left). No row: above the threshold. An alert is sent when the level gets worse than the row says;
# a restock above the threshold deletes the row, so the next crossing alerts again.
stock_alerts = Table(
    "stock_alerts",
    metadata,
    Column("product_id", Id, ForeignKey("products.id"), primary_key=True),
    Column("level", String(8), nullable=False),
    Column("alerted_at", UTCDateTime, nullable=False),
)

# An order the shop opened at WeChat Pay (a JSAPI prepay from the pay page, or a Native QR): what the
# reconciliation job asks WeChat Pay about (a notify is not guaranteed), and closes there once the order's
# reservation is over. ``state``: ``open`` until WeChat Pay says it was paid (``paid``) or it was closed
# there (``closed``); ``checked_at``: when it was last asked about (several schedulers take turns).
wechat_pay_orders = Table(
    "wechat_pay_orders",
    metadata,
    Column("order_ref", String(32), primary_key=True),
    Column("trade_type", String(8), nullable=False),
    Column("state", String(8), nullable=False, server_default=text("'open'")),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("checked_at", UTCDateTime),
    Column("settled_at", UTCDateTime),
    Index("ix_wechat_pay_orders_open", "state", "checked_at"),
)
