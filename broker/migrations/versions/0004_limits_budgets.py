"""Per-rental spending limits and monthly budgets."""

from alembic import op

from broker.migrations.columns import document, key, moment, money, text, whole

revision, down_revision = "0004", "0003"


def upgrade() -> None:
    with op.batch_alter_table("rentals") as batch:
        batch.add_column(whole("max_duration_seconds", nullable=True))
        batch.add_column(money("max_cost", nullable=True))
        batch.add_column(whole("idle_timeout_seconds", nullable=True))
        batch.add_column(moment("last_activity_at", nullable=True))
    op.create_table(
        "budgets",
        key("account_id", refers="accounts.id", primary=True),
        money("monthly_limit", nullable=True),
        document("alert_at"),
        money("low_balance", nullable=True),
        text("notified_period", 7, nullable=True),
        document("notified"),
        moment("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("budgets")
    with op.batch_alter_table("rentals") as batch:
        batch.drop_column("last_activity_at")
        batch.drop_column("idle_timeout_seconds")
        batch.drop_column("max_cost")
        batch.drop_column("max_duration_seconds")
