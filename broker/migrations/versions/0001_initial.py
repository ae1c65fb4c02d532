"""The initial schema: accounts, API keys, the ledger, holds, top-ups, Stripe events, prices.

Money columns are BIGINT micro-dollars; timestamps are timezone-aware (the models read them
through `pricing.dbtypes.UTCDateTime`). The CHECK constraints restate the ledger's invariants.
"""

import sqlalchemy as sa
from alembic import op

from broker.migrations.columns import serial_id

revision, down_revision = "0001", None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= held", name="ck_accounts_available_nonnegative"),
        sa.CheckConstraint("held >= 0", name="ck_accounts_held_nonnegative"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "price_points",
        serial_id(),
        sa.Column("offer_id", sa.String(length=300), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("gpu", sa.String(length=80), nullable=False),
        sa.Column("region", sa.String(length=120), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_price_points_gpu_at", "price_points", ["gpu", "at"], unique=False)
    op.create_index("ix_price_points_offer_at", "price_points", ["offer_id", "at"], unique=False)
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index(op.f("ix_api_keys_account_id"), "api_keys", ["account_id"], unique=False)
    op.create_table(
        "holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status = 'open' OR held = 0", name="ck_holds_resolved_empty"),
        sa.CheckConstraint("status IN ('open', 'captured', 'released')", name="ck_holds_status"),
        sa.CheckConstraint("captured >= 0", name="ck_holds_captured_nonnegative"),
        sa.CheckConstraint("held >= 0", name="ck_holds_held_nonnegative"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_holds_account_id"), "holds", ["account_id"], unique=False)
    op.create_table(
        "topups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("credited", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'succeeded')", name="ck_topups_status"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "idempotency_key", name="uq_topups_account_idempotency"),
        sa.UniqueConstraint("payment_intent_id"),
    )
    op.create_index(op.f("ix_topups_account_id"), "topups", ["account_id"], unique=False)
    op.create_table(
        "ledger_entries",
        serial_id(),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("held_after", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", sa.String(length=40), nullable=True),
        sa.Column("reference", sa.String(length=300), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('topup', 'grant', 'hold', 'release', 'charge')", name="ck_ledger_entries_kind"
        ),
        sa.CheckConstraint("amount > 0", name="ck_ledger_entries_amount_positive"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["hold_id"], ["holds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index(
        "ix_ledger_entries_account_id_id", "ledger_entries", ["account_id", "id"], unique=False
    )
    op.create_index(op.f("ix_ledger_entries_hold_id"), "ledger_entries", ["hold_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_entries_hold_id"), table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_account_id_id", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_index(op.f("ix_topups_account_id"), table_name="topups")
    op.drop_table("topups")
    op.drop_index(op.f("ix_holds_account_id"), table_name="holds")
    op.drop_table("holds")
    op.drop_index(op.f("ix_api_keys_account_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("stripe_events")
    op.drop_index("ix_price_points_offer_at", table_name="price_points")
    op.drop_index("ix_price_points_gpu_at", table_name="price_points")
    op.drop_table("price_points")
    op.drop_table("accounts")
