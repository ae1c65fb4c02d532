"""The database schema as `gpubroker serve` and `gpubroker db` see it, before anything else runs.

Before it builds anything, `serve` compares the database's schema revision with the newest
one it ships. SQLite migrates itself on start (one process owns the file). On PostgreSQL, which
several replicas share, migrating is the operator's decision: a schema that is behind (or empty)
stops `serve` with one line saying to run `gpubroker db upgrade`, or to start with `--migrate`,
which upgrades under the same advisory lock as `db upgrade`, so replicas that start together
migrate once. A schema newer than this release knows stops it too (it may not read what a later
release wrote). A bad setting or an unreachable database is one line as well, never a traceback.

Alembic is imported inside the functions, so the CLI's client commands never pay for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory


def stop(message: str) -> typer.Exit:
    """One line on stderr, exit status 1: how `serve` and `db` refuse."""
    typer.echo(f"gpubroker: {message}", err=True)
    return typer.Exit(code=1)


def _shown(url: str) -> str:
    from broker.db import normalize_url

    return normalize_url(url).render_as_string(hide_password=True)


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    from broker.migrations import alembic_config

    return ScriptDirectory.from_config(alembic_config())


def _revisions(url: str) -> set[str]:
    """The schema revisions recorded in the database at `url` (empty: never migrated)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from broker.db import make_engine

    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        reason = _first_line(exc)
        raise stop(f"cannot read the database schema at {_shown(url)}: {reason}") from None
    finally:
        engine.dispose()


def upgrade(url: str) -> None:
    """Apply pending migrations (under the advisory lock on PostgreSQL), or stop in one line."""
    from sqlalchemy.exc import SQLAlchemyError

    from broker import migrations

    try:
        migrations.upgrade(url)
    except SQLAlchemyError as exc:
        reason = _first_line(exc)
        raise stop(f"migrating the database at {_shown(url)} failed: {reason}") from None


def _newer(current: set[str], script: ScriptDirectory) -> bool:
    """Whether the database was migrated by a release that knows revisions this one does not."""
    from alembic.util import CommandError

    for revision in current:
        try:
            if script.get_revision(revision) is None:
                return True
        except CommandError:
            return True
    return False


def _schema_problem(current: set[str], script: ScriptDirectory) -> str | None:
    """Why a schema at revisions `current` cannot be served, in one sentence; None if current."""
    heads = set(script.get_heads())
    if current == heads:
        return None
    want = ", ".join(sorted(heads))
    found = (
        f"has schema revision {', '.join(sorted(current))}"
        if current
        else "has no gpubroker schema (it was never migrated)"
    )
    if _newer(current, script):
        return (
            f"the database {found}, newer than this gpubroker knows ({want}); "
            "run a gpubroker release that has it"
        )
    return (
        f"the database {found}, this gpubroker needs {want}: run `gpubroker db upgrade` "
        "(or start with `gpubroker serve --migrate`)"
    )


def database_url(demo: bool) -> str:
    """The URL `serve` will use; settings problems become one line."""
    from pydantic import ValidationError

    from broker.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise stop(f"invalid configuration: {problems}") from None
    if demo:
        from broker.demo import DEMO_DATABASE_URL

        return os.environ.get("GPUBROKER_DATABASE_URL", DEMO_DATABASE_URL)
    return settings.database_url


def prepare_schema(url: str, *, migrate: bool) -> None:
    """Make sure the schema at `url` is current before serving, or stop with one line.

    SQLite is left to the app, which migrates it on start.
    """
    from broker.db import normalize_url

    if normalize_url(url).get_backend_name() == "sqlite":
        return
    script = _script()
    current = _revisions(url)
    if migrate and current != set(script.get_heads()) and not _newer(current, script):
        upgrade(url)
        current = _revisions(url)
    problem = _schema_problem(current, script)
    if problem is not None:
        raise stop(problem)


def check(url: str) -> str:
    """A line saying the schema at `url` is current; else stop with one saying why."""
    script = _script()
    problem = _schema_problem(_revisions(url), script)
    if problem is not None:
        raise stop(problem)
    return f"database schema is up to date ({', '.join(sorted(script.get_heads()))})"
