"""Alembic's environment: our metadata, and the connection `broker.migrations.upgrade` passes.

Run by the `alembic` command (with `alembic.ini` beside this file), it connects to
`GPUBROKER_DATABASE_URL` itself.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

# Imported for their side effect: registering their tables on SQLModel.metadata.
from broker import ledger_tables  # noqa: F401
from broker.budget import tables as budget_tables  # noqa: F401
from broker.db import make_engine, normalize_url
from broker.rentals import tables as rental_tables  # noqa: F401
from broker.webhooks import tables as webhook_tables  # noqa: F401
from pricing import history_table  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get(
        "GPUBROKER_DATABASE_URL", "sqlite:///./gpubroker.db"
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=normalize_url(_url()), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
