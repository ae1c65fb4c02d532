"""`GET /metrics`: the broker's state for Prometheus.

Two registries are served together. Each app has its own for what belongs to it: HTTP requests
and latency per route, and collectors that read the truth at scrape time (the catalog's offers
and freshness, rentals by status and ledger totals from one cheap aggregate query each, the
periodic jobs' last runs), so those figures cannot drift from what the API shows and two apps in
one process never mix. Process-wide figures live in prometheus_client's default registry: the
connect proxy's (proxy.metrics), the catalog refresh's and provider retries' (pricing.metrics),
and the process and garbage-collector collectors.

Route labels are route templates (`/v1/rentals/{rental_id}`), never raw paths, so no rental id
or key ever becomes a label value; a request that matches no route is counted as `unmatched`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from typing import cast

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.db import Database
from broker.ledger_tables import Account
from broker.rentals.tables import RENTAL_STATUSES, Rental
from pricing.catalog import Catalog, ProviderHealth

log = logging.getLogger("gpubroker.metrics")

DEFAULT_REGISTRY = REGISTRY  # the process-wide one, served beside each app's own
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class CatalogCollector(Collector):
    """Offers, health and freshness of each provider's part of the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        offers = GaugeMetricFamily(
            "gpubroker_offers", "Offers in the catalog per provider", labels=["provider"]
        )
        healthy = GaugeMetricFamily(
            "gpubroker_provider_up",
            "1 when the provider's last refresh succeeded and is recent",
            labels=["provider"],
        )
        updated = GaugeMetricFamily(
            "gpubroker_provider_updated_timestamp_seconds",
            "Time of the provider's last successful refresh",
            labels=["provider"],
        )
        for name, status in self.catalog.status().items():
            offers.add_metric([name], float(cast(int, status["offers"])))
            healthy.add_metric([name], 1.0 if status["status"] == ProviderHealth.OK else 0.0)
            stamp = status["updated_at"]
            if stamp is not None:
                updated.add_metric([name], cast(datetime, stamp).timestamp())
        yield offers
        yield healthy
        yield updated


class DatabaseCollector(Collector):
    """Rentals by status and the ledger's totals, aggregated by the database at scrape time.

    Two small queries (a GROUP BY over rentals, two sums over accounts). When the database does
    not answer, only `gpubroker_database_up 0` is reported: a scrape never fails because of it.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("gpubroker_database_up", "1 when the scrape's queries succeeded")
        try:
            with self.db.session(read_only=True) as session:
                by_status: dict[str, int] = dict(
                    session.execute(
                        select(col(Rental.status), func.count()).group_by(col(Rental.status))
                    ).all()
                )
                balance, held = session.execute(
                    select(
                        func.coalesce(func.sum(Account.balance), 0),
                        func.coalesce(func.sum(Account.held), 0),
                    )
                ).one()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable at scrape: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        rentals = GaugeMetricFamily(
            "gpubroker_rentals", "Rentals by status (every account)", labels=["status"]
        )
        for status in sorted({*RENTAL_STATUSES, *by_status}):
            rentals.add_metric([status], float(by_status.get(status, 0)))
        yield rentals
        yield GaugeMetricFamily(
            "gpubroker_ledger_balance_usd", "Sum of all account balances", value=int(balance) / 1e6
        )
        yield GaugeMetricFamily(
            "gpubroker_ledger_held_usd", "Sum of credit held for rentals", value=int(held) / 1e6
        )


@dataclass
class JobRun:
    """The last run of one periodic job on this replica."""

    started_at: datetime
    seconds: float
    outcome: str  # ran | skipped (another replica holds it) | error


@dataclass
class JobHistory:
    """The last run and the run counts of each periodic job, kept by `Jobs`."""

    last: dict[str, JobRun] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def record(self, name: str, started: float, started_at: datetime, outcome: str) -> None:
        run = JobRun(started_at, time.perf_counter() - started, outcome)
        with self._lock:
            self.last[name] = run
            self.counts[(name, outcome)] = self.counts.get((name, outcome), 0) + 1

    def snapshot(self) -> tuple[dict[str, JobRun], dict[tuple[str, str], int]]:
        with self._lock:
            return dict(self.last), dict(self.counts)


class JobCollector(Collector):
    def __init__(self, history: JobHistory) -> None:
        self.history = history

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        last, counts = self.history.snapshot()
        runs = CounterMetricFamily(
            "gpubroker_job_runs",
            "Periodic job runs on this replica (skipped: another replica ran it)",
            labels=["job", "outcome"],
        )
        for (name, outcome), count in sorted(counts.items()):
            runs.add_metric([name, outcome], float(count))
        stamp = GaugeMetricFamily(
            "gpubroker_job_last_run_timestamp_seconds",
            "Start of the job's last run",
            labels=["job"],
        )
        seconds = GaugeMetricFamily(
            "gpubroker_job_last_run_duration_seconds",
            "Duration of the job's last run",
            labels=["job"],
        )
        for name, run in sorted(last.items()):
            stamp.add_metric([name], run.started_at.timestamp())
            seconds.add_metric([name], run.seconds)
        yield runs
        yield stamp
        yield seconds


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestMetrics:
    """ASGI middleware: a count and a latency observation per request, by route template."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "gpubroker_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "gpubroker_http_request_duration_seconds",
            "Time to the response's headers, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.latency.labels(scope["method"], route_template(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            self.requests.labels(scope["method"], route_template(scope), str(status)).inc()


def install_metrics(
    app: FastAPI,
    catalog: Catalog,
    db: Database | None = None,
    job_history: JobHistory | None = None,
) -> CollectorRegistry:
    """`/metrics` and the per-route request metrics of one app."""
    registry = CollectorRegistry()
    registry.register(CatalogCollector(catalog))
    if db is not None:
        registry.register(DatabaseCollector(db))
    if job_history is not None:
        registry.register(JobCollector(job_history))
    app.add_middleware(RequestMetrics, registry=registry)

    @app.get("/metrics", tags=["operator"], include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(registry) + generate_latest(DEFAULT_REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return registry
