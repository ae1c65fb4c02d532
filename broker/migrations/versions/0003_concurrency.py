"""Concurrency and ownership: lifecycle actions in flight, placements recorded before the
provider is called, per-rental credentials kept encrypted, the deployment that owns an instance.
"""

import sqlalchemy as sa
from alembic import op

from broker.migrations.columns import document, key, long_text, moment, serial_id, text, whole

revision, down_revision = "0003", "0002"


def upgrade() -> None:
    # -- lifecycle (actions in flight) --
    with op.batch_alter_table("rentals") as batch:
        batch.add_column(text("action", 16, nullable=True))
        batch.add_column(moment("action_at", nullable=True))
    # -- ownership, placements and credentials --
    with op.batch_alter_table("rentals") as batch:
        batch.add_column(long_text("upstream_sealed", nullable=True))
    op.create_table(
        "deployment",
        whole("id"),
        key("deployment_id"),
        moment("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "placements",
        serial_id(),
        key("rental_id"),
        text("provider", 40),
        text("offer_id", 300),
        moment("started_at"),
        text("outcome", 16, nullable=True),
        text("handle", 300, nullable=True),
        moment("finished_at", nullable=True),
    )
    with op.batch_alter_table("placements") as batch:
        batch.create_index("ix_placements_rental", ["rental_id"], unique=False)
        batch.create_index("ix_placements_open", ["outcome", "started_at"], unique=False)
        batch.create_index("ix_placements_provider_handle", ["provider", "handle"], unique=False)
    op.create_table(
        "reconcile_runs",
        serial_id(),
        key("deployment_id"),
        moment("started_at"),
        moment("finished_at"),
        document("findings"),
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
