"""`GET /healthz`: is this replica able to serve, and are its background parts alive?

The database decides: a replica that cannot run `SELECT 1` within `PING_TIMEOUT_SECONDS` answers
503, so a load balancer takes it out of rotation, and says why in a word (the exception's type,
never a URL or a credential). The rest is reported, not judged: the job scheduler and the catalog
refresher (running or not; a replica started without jobs is healthy), each periodic job's last
run on this replica (when, how long, and whether it ran, was skipped because another replica
holds it, or failed), and each provider's catalog health.

```
{"status": "ok" | "unavailable",
 "database": {"status": "ok" | "down", "latency_ms": 1.3, "error": null | "OperationalError"},
 "scheduler": {"jobs_running": true, "refresher_running": true,
               "jobs": {"meter": {"last_run_at": "...", "seconds": 0.01, "outcome": "ran"}}},
 "providers": {...}}
```
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State

from broker.db import Database

log = logging.getLogger("gpubroker.health")

PING_TIMEOUT_SECONDS = 2.0


def _ping(db: Database) -> None:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def database_health(db: Database, timeout: float = PING_TIMEOUT_SECONDS) -> dict[str, Any]:
    """`SELECT 1` within `timeout`: its status, latency and, on failure, the error's type."""
    started = time.perf_counter()
    error: str | None = None
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping, db), timeout)
    except TimeoutError:
        error = "timeout"
    except SQLAlchemyError as exc:
        error = type(exc).__name__
    if error is not None:
        log.warning("health: database check failed: %s", error)
    return {
        "status": "ok" if error is None else "down",
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "error": error,
    }


def scheduler_health(state: State) -> dict[str, Any]:
    last, _ = state.jobs.history.snapshot()
    return {
        "jobs_running": state.jobs.running,
        "refresher_running": state.refresher.running,
        "jobs": {
            name: {
                "last_run_at": run.started_at,
                "seconds": round(run.seconds, 3),
                "outcome": run.outcome,
            }
            for name, run in sorted(last.items())
        },
    }


async def health_report(state: State) -> tuple[int, dict[str, Any]]:
    """The status code and body of `/healthz` for the app whose state this is."""
    database = await database_health(state.db)
    up = database["status"] == "ok"
    body = {
        "status": "ok" if up else "unavailable",
        "database": database,
        "scheduler": scheduler_health(state),
        "providers": state.catalog.status(),
    }
    return (200 if up else 503), body
