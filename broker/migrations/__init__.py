"""Schema migrations (Alembic), runnable from an installed package.

The Alembic configuration is built in code with `script_location = broker:migrations`, a package
path rather than a path relative to some ini file, so `gpubroker db upgrade` and the app's start
on SQLite work from any working directory. `upgrade` runs in one transaction on the given
engine; on PostgreSQL it first takes an advisory lock, so replicas starting together migrate one
after the other.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from broker.db import make_engine

SCRIPT_LOCATION = "broker:migrations"
_ADVISORY_LOCK_KEY = 0x6770_6272_6B72  # "gpbrkr": any constant shared by every replica


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def upgrade(target: str | URL | Engine, revision: str = "head") -> None:
    """Bring the database at `target` (a URL or an engine) up to `revision`."""
    engine = target if isinstance(target, Engine) else make_engine(target, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not target:
            engine.dispose()
