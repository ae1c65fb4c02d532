"""`gpubroker serve` on a PostgreSQL schema that is not current: one line, exit status 1.

Replicas share the database, so none of them migrates it unasked: an empty schema or one an
older release left behind stops `serve` before it builds anything, with one line that says what
to run. (`serve --migrate` is exercised by the replica tests, which start two replicas with it
at once on an empty schema.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sqlalchemy import text

from broker.db import Database
from broker.migrations import upgrade
from tests.replicas.processes import GPUBROKER, free_port


def gpubroker(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env["GPUBROKER_DATABASE_URL"] = database_url
    command = [str(GPUBROKER), *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def serve(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return gpubroker(database_url, cwd, "serve", "--port", str(free_port()))


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{result.stdout}{result.stderr}"
    return lines[0]


def test_serve_on_an_empty_schema_says_to_migrate(
    replica_database_url: str, tmp_path: Path
) -> None:
    result = serve(replica_database_url, tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert "never migrated" in line
    assert "gpubroker db upgrade" in line and "--migrate" in line
    db = Database(replica_database_url)
    with db.engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        ).scalar_one()
    db.dispose()
    assert tables == 0  # it changed nothing


def test_serve_on_an_older_schema_names_its_revision(
    replica_database_url: str, tmp_path: Path
) -> None:
    upgrade(replica_database_url, "0002")
    result = serve(replica_database_url, tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert "revision 0002" in line
    assert "gpubroker db upgrade" in line and "--migrate" in line


def test_serve_on_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = serve("postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none", tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert "cannot read the database schema" in line
    assert "hunter2" not in line


def test_db_check_names_what_db_upgrade_fixes(replica_database_url: str, tmp_path: Path) -> None:
    behind = gpubroker(replica_database_url, tmp_path, "db", "check")
    assert behind.returncode == 1
    assert "gpubroker db upgrade" in one_line(behind)
    upgraded = gpubroker(replica_database_url, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = gpubroker(replica_database_url, tmp_path, "db", "check")
    assert current.returncode == 0
    assert "up to date" in one_line(current)
