"""Rentals and spot observations.

A rental keeps its placement (provider, offer, handle), its request (for idempotency and spot
recovery) and its billing state (hold, whole seconds billed, up to when, charged so far).
"""

import sqlalchemy as sa
from alembic import op

from broker.migrations.columns import serial_id

revision, down_revision = "0002", "0001"


def upgrade() -> None:
    op.create_table(
        "spot_observations",
        serial_id(),
        sa.Column("rental_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("gpu", sa.String(length=80), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("spot_observations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_spot_observations_provider_gpu", ["provider", "gpu"], unique=False
        )

    op.create_table(
        "rentals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("recover", sa.Boolean(), nullable=False),
        sa.Column("rental_key_hash", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=True),
        sa.Column("offer_id", sa.String(length=300), nullable=True),
        sa.Column("handle", sa.String(length=300), nullable=True),
        sa.Column("gpu", sa.String(length=80), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=True),
        sa.Column("region", sa.String(length=120), nullable=True),
        sa.Column("price_per_hour", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("ssh", sa.JSON(), nullable=True),
        sa.Column("hold_id", sa.String(length=40), nullable=True),
        sa.Column("billed_seconds", sa.Integer(), nullable=False),
        sa.Column("billed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charged", sa.BigInteger(), nullable=False),
        sa.Column("earlier_seconds", sa.Integer(), nullable=False),
        sa.Column("earlier_charged", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_running_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("running_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("interruptions", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"],
            ["holds.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
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
