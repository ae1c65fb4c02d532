"""Concurrency and ownership: lifecycle actions in flight, placements recorded before the
provider is called, per-rental credentials kept encrypted, the deployment that owns an instance.
"""

import sqlalchemy as sa
from alembic import op

from broker.migrations.columns import serial_id

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    # -- lifecycle (actions in flight) --
    with op.batch_alter_table("rentals") as batch:
        batch.add_column(sa.Column("action", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("action_at", sa.DateTime(timezone=True), nullable=True))
    # -- ownership, placements and credentials --
    with op.batch_alter_table("rentals") as batch:
        batch.add_column(sa.Column("upstream_sealed", sa.Text(), nullable=True))
    op.create_table(
        "deployment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "placements",
        serial_id(),
        sa.Column("rental_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("offer_id", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("handle", sa.String(length=300), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("placements") as batch:
        batch.create_index("ix_placements_rental", ["rental_id"], unique=False)
        batch.create_index("ix_placements_open", ["outcome", "started_at"], unique=False)
        batch.create_index("ix_placements_provider_handle", ["provider", "handle"], unique=False)
    op.create_table(
        "reconcile_runs",
        serial_id(),
        sa.Column("deployment_id", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reconcile_runs") as batch:
        batch.create_index("ix_reconcile_runs_started", ["started_at"], unique=False)


def downgrade() -> None:
    # -- ownership, placements and credentials --
    op.drop_table("reconcile_runs")
    op.drop_table("placements")
    op.drop_table("deployment")
    with op.batch_alter_table("rentals") as batch:
        batch.drop_column("upstream_sealed")
    # -- lifecycle (actions in flight) --
    with op.batch_alter_table("rentals") as batch:
        batch.drop_column("action_at")
        batch.drop_column("action")
