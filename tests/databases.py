"""Migrated databases made fast: the migrations run once per test session and backend.

Each test still gets a database of its own, built by the migrations: on SQLite a copy of a file
the migrations built; on PostgreSQL a new schema in which every statement the migrations sent
to a first, empty schema is sent again, in order, in one transaction (the statements name no
schema; the URL's `search_path` selects it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import NullPool

from broker.db import make_engine
from broker.migrations import upgrade


def migrated_sqlite_file(path: Path) -> Path:
    """A SQLite file at `path`, built by the migrations."""
    upgrade(f"sqlite:///{path}")
    return path


def copy_sqlite(template: Path, path: Path) -> str:
    """A copy of the `template` file at `path` (through SQLite's backup); its URL."""
    source, target = sqlite3.connect(template), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{path}"


@dataclass
class RecordedMigrations:
    """The statements (with their parameters) the migrations sent to a PostgreSQL schema."""

    statements: list[tuple[str, Any, bool]] = field(default_factory=list)

    @classmethod
    def of(cls, url: str) -> RecordedMigrations:
        """Migrate the empty schema at `url`, recording every statement sent."""
        recorded = cls()
        engine = make_engine(url, poolclass=NullPool)

        def record(
            _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
        ) -> None:
            recorded.statements.append((statement, parameters, many))

        event.listen(engine, "before_cursor_execute", record)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return recorded

    def replay(self, url: str) -> None:
        """Send the recorded statements to the empty schema at `url`, in one transaction."""
        engine = make_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                cursor = conn.connection.cursor()
                for statement, parameters, executemany in self.statements:
                    if executemany:
                        cursor.executemany(statement, parameters)
                    else:
                        cursor.execute(statement, parameters)
        finally:
            engine.dispose()
