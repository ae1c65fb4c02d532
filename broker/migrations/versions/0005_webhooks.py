"""Webhooks: endpoints per account, the outbox of events, deliveries and their attempts."""

from alembic import op

from broker.migrations.columns import document, flag, key, long_text, moment, serial_id, text, whole

revision, down_revision = "0005", "0004"


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        key(),
        key("account_id", refers="accounts.id"),
        text("url", 2000),
        document("events"),
        long_text("secret_sealed"),
        moment("created_at"),
    )
    op.create_index("ix_webhook_endpoints_account", "webhook_endpoints", ["account_id"])
    op.create_table(
        "webhook_events",
        key(),
        key("account_id"),
        text("type", 40),
        long_text("body"),
        moment("created_at"),
    )
    op.create_index("ix_webhook_events_account", "webhook_events", ["account_id"])
    op.create_table(
        "webhook_deliveries",
        serial_id(),
        key("event_id", refers="webhook_events.id"),
        key("endpoint_id"),
        text("state", 16),
        whole("attempts"),
        moment("next_at"),
        moment("lease_until", nullable=True),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_at"])
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id"])
    op.create_table(
        "webhook_attempts",
        serial_id(),
        key("endpoint_id"),
        key("event_id"),
        text("type", 40),
        whole("attempt"),
        whole("status_code", nullable=True),
        text("error", 500, nullable=True),
        flag("gave_up"),
        moment("at"),
    )
    op.create_index("ix_webhook_attempts_endpoint", "webhook_attempts", ["endpoint_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
