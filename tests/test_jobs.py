"""Singleton jobs: one replica runs each job at a time; a failing run never stops the schedule."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import text

from broker.db import Database
from broker.jobs import Jobs, lock_key


def test_a_job_runs_unless_another_replica_holds_its_lock(database: Database) -> None:
    runs: list[str] = []
    jobs = Jobs(database)
    jobs.add("meter", lambda: runs.append("meter"), 60)
    assert jobs.run_once("meter") is True
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect() as other_replica:
            other_replica.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key("meter")})
            assert jobs.run_once("meter") is False
            other_replica.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key("meter")})
            other_replica.commit()
        assert jobs.run_once("meter") is True
        assert runs == ["meter", "meter"]
    else:
        assert runs == ["meter"]


def test_a_failing_job_is_logged_and_runs_again(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise RuntimeError("provider exploded")

    jobs = Jobs(database)
    jobs.add("flaky", flaky, 0.05)
    with caplog.at_level(logging.ERROR, logger="gpubroker.jobs"):
        jobs.start()
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        jobs.stop()
    assert len(calls) >= 3
    assert "job flaky failed" in caplog.text
