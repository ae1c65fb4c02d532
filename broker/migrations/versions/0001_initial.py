"""The initial schema: accounts, API keys, the ledger, holds, top-ups, Stripe events, prices.

Money columns are BIGINT micro-dollars; timestamps are timezone-aware (the models read them
through `pricing.dbtypes.UTCDateTime`). The CHECK constraints restate the ledger's invariants.
"""

import sqlalchemy as sa
from alembic import op

from broker.migrations.columns import key, moment, money, nonnegative, serial_id, text

revision, down_revision = "0001", None

OWNED = ("api_keys", "holds", "topups")


def upgrade() -> None:
    op.create_table(
        "accounts",
        key(),
        text("name", 200),
        money("balance"),
        money("held"),
        moment("created_at"),
        sa.CheckConstraint("balance >= held", name="ck_accounts_available_nonnegative"),
        nonnegative("accounts", "held"),
    )
    op.create_table(
        "price_points",
        serial_id(),
        text("offer_id", 300),
        text("provider", 40),
        text("gpu", 80),
        text("region", 120),
        text("tier", 16),
        money("price"),
        moment("at"),
    )
    op.create_index("ix_price_points_gpu_at", "price_points", ["gpu", "at"], unique=False)
    op.create_index("ix_price_points_offer_at", "price_points", ["offer_id", "at"], unique=False)
    op.create_table(
        "stripe_events",
        text("id", 255),
        text("type", 100),
        text("payment_intent_id", 255, nullable=True),
        moment("received_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_keys",
        key(),
        key("account_id", refers="accounts.id"),
        text("key_hash", 64),
        moment("created_at"),
        moment("revoked_at", nullable=True),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "holds",
        key(),
        key("account_id", refers="accounts.id"),
        text("status", 16),
        money("held"),
        money("captured"),
        text("reference", 300),
        moment("created_at"),
        moment("resolved_at", nullable=True),
        sa.CheckConstraint("status = 'open' OR held = 0", name="ck_holds_resolved_empty"),
        sa.CheckConstraint("status IN ('open', 'captured', 'released')", name="ck_holds_status"),
        nonnegative("holds", "captured"),
        nonnegative("holds", "held"),
    )
    op.create_table(
        "topups",
        key(),
        key("account_id", refers="accounts.id"),
        money("amount"),
        text("status", 16),
        text("payment_intent_id", 255, nullable=True),
        text("idempotency_key", 255, nullable=True),
        money("credited", nullable=True),
        moment("created_at"),
        moment("succeeded_at", nullable=True),
        sa.CheckConstraint("status IN ('pending', 'succeeded')", name="ck_topups_status"),
        sa.UniqueConstraint("account_id", "idempotency_key", name="uq_topups_account_idempotency"),
        sa.UniqueConstraint("payment_intent_id"),
    )
    for table in OWNED:
        op.create_index(op.f(f"ix_{table}_account_id"), table, ["account_id"], unique=False)
    op.create_table(
        "ledger_entries",
        serial_id(),
        key("account_id", refers="accounts.id"),
        text("kind", 16),
        money("amount"),
        money("balance_after"),
        money("held_after"),
        key("hold_id", nullable=True, refers="holds.id"),
        text("reference", 300),
        text("dedupe_key", 200, nullable=True),
        moment("created_at"),
        sa.CheckConstraint(
            "kind IN ('topup', 'grant', 'hold', 'release', 'charge')", name="ck_ledger_entries_kind"
        ),
        sa.CheckConstraint("amount > 0", name="ck_ledger_entries_amount_positive"),
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
    for table in reversed(OWNED):
        op.drop_index(op.f(f"ix_{table}_account_id"), table_name=table)
        op.drop_table(table)
    op.drop_table("stripe_events")
    op.drop_index("ix_price_points_offer_at", table_name="price_points")
    op.drop_index("ix_price_points_gpu_at", table_name="price_points")
    op.drop_table("price_points")
    op.drop_table("accounts")
