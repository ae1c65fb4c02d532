"""Periodic jobs that must run once across all broker replicas (metering, reconciliation, pruning).

Replicas share one database. On PostgreSQL each run takes a session-level advisory lock named
after the job and skips the run when another replica holds it; on SQLite there is one process
by construction, so the lock is a no-op. A job that raises is logged and runs again at its next
interval: one bad run never stops the schedule.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from broker.db import Database
from broker.metrics import JobHistory
from pricing.refresh import background_scheduler

log = logging.getLogger("gpubroker.jobs")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a job name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Jobs:
    """The broker's singleton periodic jobs."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._jobs: dict[str, tuple[Callable[[], object], float]] = {}
        self._scheduler: BackgroundScheduler | None = None
        self.history = JobHistory()  # last run of each job here, for /healthz and /metrics

    def add(self, name: str, func: Callable[[], object], every_seconds: float) -> None:
        self._jobs[name] = (func, every_seconds)

    def run_once(self, name: str) -> bool:
        """Run a job now unless another replica is running it; True when it ran."""
        func, _ = self._jobs[name]
        if self.db.engine.dialect.name != "postgresql":
            func()
            return True
        with self.db.engine.connect() as conn:
            key = lock_key(name)
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                log.debug("job %s is running on another replica", name)
                return False
            try:
                func()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return True

    def _guarded(self, name: str) -> None:
        started, started_at, outcome = time.perf_counter(), datetime.now(UTC), "error"
        try:
            outcome = "ran" if self.run_once(name) else "skipped"
        except Exception:  # a failed run is retried at the next interval
            log.exception("job %s failed", name)
        finally:
            self.history.record(name, started, started_at, outcome)

    @property
    def running(self) -> bool:
        """True while the schedule is alive."""
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        if not self._jobs:
            return
        scheduler = background_scheduler(len(self._jobs))
        now = datetime.now(UTC)
        for name, (_, every) in self._jobs.items():
            scheduler.add_job(
                self._guarded, "interval", args=[name], id=name, seconds=every, next_run_time=now
            )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
