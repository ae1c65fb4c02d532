"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import broker
from broker.db import Database
from broker.ledger_tables import Account, ApiKey, Hold, LedgerEntry, StripeEvent, Topup
from broker.migrations import upgrade
from pricing.history_table import PricePoint

MODELS = (Account, ApiKey, Hold, LedgerEntry, StripeEvent, Topup, PricePoint)
TABLES = {model.__tablename__ for model in MODELS}


def test_migrations_create_every_table_the_models_declare(database: Database) -> None:
    with database.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert tables >= TABLES
    assert differences == []


def test_upgrading_again_changes_nothing(database: Database, database_url: str) -> None:
    upgrade(database.engine)
    upgrade(database_url)
    with database.engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert len(version) == 1


def test_upgrade_works_from_any_working_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    script = f"from broker.migrations import upgrade; upgrade({url!r})"
    root = Path(broker.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    db = Database(url)
    try:
        assert set(inspect(db.engine).get_table_names()) >= TABLES
    finally:
        db.dispose()
