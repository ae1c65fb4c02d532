"""Rentals and spot observations.

A rental keeps its placement (provider, offer, handle), its request (for idempotency and spot
recovery) and its billing state (hold, whole seconds billed, up to when, charged so far).
"""

import sqlalchemy as sa
from alembic import op

from broker.migrations.columns import document, flag, key, moment, money, serial_id, text, whole

revision, down_revision = "0002", "0001"


def upgrade() -> None:
    op.create_table(
        "spot_observations",
        serial_id(),
        key("rental_id"),
        text("provider", 40),
        text("gpu", 80),
        whole("seconds"),
        flag("interrupted"),
        moment("at"),
    )
    with op.batch_alter_table("spot_observations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_spot_observations_provider_gpu", ["provider", "gpu"], unique=False
        )

    op.create_table(
        "rentals",
        key(),
        key("account_id", refers="accounts.id"),
        text("status", 16),
        text("idempotency_key", 255, nullable=True),
        text("request_hash", 64),
        document("request"),
        flag("recover"),
        text("rental_key_hash", 64),
        text("provider", 40, nullable=True),
        text("offer_id", 300, nullable=True),
        text("handle", 300, nullable=True),
        text("gpu", 80, nullable=True),
        whole("gpu_count"),
        text("tier", 16, nullable=True),
        text("region", 120, nullable=True),
        money("price_per_hour"),
        document("attempts"),
        document("ssh", nullable=True),
        key("hold_id", nullable=True, refers="holds.id"),
        whole("billed_seconds"),
        moment("billed_until", nullable=True),
        money("charged"),
        whole("earlier_seconds"),
        money("earlier_charged"),
        moment("last_seen_running_at", nullable=True),
        moment("running_since", nullable=True),
        whole("interruptions"),
        text("reason", 500, nullable=True),
        moment("created_at"),
        moment("started_at", nullable=True),
        moment("ended_at", nullable=True),
        sa.UniqueConstraint("account_id", "idempotency_key", name="uq_rentals_idempotency"),
        sa.UniqueConstraint("rental_key_hash"),
    )
    with op.batch_alter_table("rentals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rentals_account_created", ["account_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_rentals_provider_handle", ["provider", "handle"], unique=False)
        batch_op.create_index("ix_rentals_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rentals", schema=None) as batch_op:
        batch_op.drop_index("ix_rentals_status")
        batch_op.drop_index("ix_rentals_provider_handle")
        batch_op.drop_index("ix_rentals_account_created")

    op.drop_table("rentals")
    with op.batch_alter_table("spot_observations", schema=None) as batch_op:
        batch_op.drop_index("ix_spot_observations_provider_gpu")

    op.drop_table("spot_observations")
