"""What an operator sees: `/metrics` counting what happened, `/healthz` telling the truth.

Metrics are read back through prometheus_client's own parser, so a name or label typo fails
here exactly as it would fail a dashboard. Process-wide counters (proxy, refresh) are compared
before and after, since other tests in the same process move them too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from broker import ledger
from broker.app import create_app
from broker.db import Database
from broker.settings import CoreSettings
from pricing.money import to_micros
from tests.conftest import StaticProvider
from tests.proxy.conftest import Broker, broker, make_broker, sims  # noqa: F401 (fixtures)

ADMIN = {"Authorization": "Bearer test-admin-key"}
DEAD_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def client(catalog_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(catalog_app) as test_client:
        yield test_client


def test_requests_are_counted_per_route_template_never_per_raw_path(client: TestClient) -> None:
    made = client.post("/v1/admin/accounts", json={"name": "ops"}, headers=ADMIN).json()
    key = {"Authorization": f"Bearer {made['api_key']}"}
    for _ in range(3):
        assert client.get("/v1/offers", params={"gpu": "H100"}).status_code == 200
    assert client.get("/v1/offers/alpha:4090:us").status_code == 200
    assert client.get("/v1/rentals/rnt_not_mine_at_all", headers=key).status_code == 404
    assert client.get("/v1/offers", params={"min_vram": "inf"}).status_code == 422
    assert client.get("/no/such/page").status_code == 404

    text = client.get("/metrics").text
    samples = scrape(text)

    requests = "gpubroker_http_requests_total"
    assert value(samples, requests, method="GET", route="/v1/offers", status="200") == 3
    assert value(samples, requests, method="GET", route="/v1/offers", status="422") == 1
    assert value(samples, requests, method="GET", route="/v1/offers/{offer_id}", status="200") == 1
    assert (
        value(samples, requests, method="GET", route="/v1/rentals/{rental_id}", status="404") == 1
    )
    assert value(samples, requests, method="POST", route="/v1/admin/accounts", status="201") == 1
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    latency = "gpubroker_http_request_duration_seconds_count"
    assert value(samples, latency, method="GET", route="/v1/offers") == 4
    for raw in ("rnt_not_mine_at_all", "alpha:4090:us", "/no/such/page", made["api_key"]):
        assert raw not in text


def test_ledger_totals_and_rentals_by_status_are_read_from_the_database(
    client: TestClient,
) -> None:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    for credit in ("12.50", "7.25"):
        made = client.post("/v1/admin/accounts", json={"name": "ops"}, headers=ADMIN).json()
        with db.session() as session:
            ledger.grant(session, made["account_id"], to_micros(credit), "test")

    samples = scrape(client.get("/metrics").text)

    assert value(samples, "gpubroker_database_up") == 1
    assert value(samples, "gpubroker_ledger_balance_usd") == 19.75
    assert value(samples, "gpubroker_ledger_held_usd") == 0
    for status in ("provisioning", "running", "stopped", "terminated", "failed"):
        assert ("gpubroker_rentals", frozenset({("status", status)})) in samples
    assert value(samples, "gpubroker_offers", provider="alpha") == 4


def test_refresh_durations_and_errors_are_observed(
    client: TestClient, static_providers: dict[str, StaticProvider]
) -> None:
    before = scrape(client.get("/metrics").text)
    static_providers["beta"].failure = "down for maintenance"
    refresher = client.app.state.refresher  # type: ignore[attr-defined]
    assert refresher.refresh("beta") is False
    assert refresher.refresh("alpha") is True

    after = scrape(client.get("/metrics").text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    errors = "gpubroker_provider_refresh_errors_total"
    durations = "gpubroker_provider_refresh_duration_seconds_count"
    assert grew(errors, provider="beta", kind="provider") == 1
    assert grew(durations, provider="beta", outcome="error") == 1
    assert grew(durations, provider="alpha", outcome="ok") == 1
    assert value(after, "gpubroker_provider_up", provider="beta") == 0


def test_rentals_and_proxy_traffic_show_in_the_metrics(broker: Broker) -> None:  # noqa: F811
    before = scrape(broker.api.get("/metrics").text)
    rental = broker.rent("empiriolabs")
    bearer = {"Authorization": f"Bearer {rental['rental_key']}"}

    response = httpx.get(broker.connect_url(rental["id"]) + "bytes/5000", headers=bearer)
    assert response.status_code == 200 and len(response.content) == 5000
    upload = httpx.post(
        broker.connect_url(rental["id"]) + "upload", content=b"x" * 3000, headers=bearer
    )
    assert upload.status_code == 200
    ws_url = broker.connect_url(rental["id"]).replace("http://", "ws://") + "ws"
    with connect(ws_url, additional_headers=bearer) as socket:
        socket.send(b"y" * 700)
        assert socket.recv(timeout=10) == b"y" * 700

    after = scrape(broker.api.get("/metrics").text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "gpubroker_rentals", status="running") == 1
    assert value(after, "gpubroker_ledger_held_usd") > 0
    assert grew("gpubroker_proxy_requests_total", protocol="http", outcome="2xx") == 2
    assert grew("gpubroker_proxy_requests_total", protocol="websocket", outcome="101") == 1
    assert grew("gpubroker_proxy_bytes_total", protocol="http", direction="downstream") >= 5000
    assert grew("gpubroker_proxy_bytes_total", protocol="http", direction="upstream") == 3000
    assert grew("gpubroker_proxy_bytes_total", protocol="websocket", direction="upstream") == 700
    assert grew("gpubroker_proxy_bytes_total", protocol="websocket", direction="downstream") == 700
    latency = "gpubroker_proxy_upstream_latency_seconds_count"
    assert grew(latency, protocol="http") == 2
    assert grew(latency, protocol="websocket") == 1
    assert rental["id"] not in broker.api.get("/metrics").text


def test_healthz_reports_the_database_and_the_scheduler(
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    static_providers: dict[str, StaticProvider],
) -> None:
    app = create_app(make_settings(database_url=database_url), adapters=static_providers)
    with TestClient(app) as client:
        body = wait_for_jobs(client, {"meter", "rental-status", "reconcile"})
        assert body["status"] == "ok"
        assert body["database"]["status"] == "ok" and body["database"]["error"] is None
        assert body["scheduler"]["jobs_running"] is True
        assert body["scheduler"]["refresher_running"] is True
        assert body["scheduler"]["jobs"]["meter"]["outcome"] in ("ran", "skipped")
        samples = scrape(client.get("/metrics").text)
        assert value(samples, "gpubroker_job_last_run_timestamp_seconds", job="meter") > 0
    app.state.db.dispose()


def wait_for_jobs(client: TestClient, names: set[str]) -> dict[str, Any]:
    """/healthz once every job named has run (the scheduler starts each one at once)."""
    for _ in range(500):
        response = client.get("/healthz")
        assert response.status_code == 200, response.text
        body = response.json()
        if names <= set(body["scheduler"]["jobs"]):
            return body
        time.sleep(0.02)
    raise AssertionError(f"jobs {names} never reported a run: {body}")


def test_healthz_answers_503_when_the_database_is_down(client: TestClient) -> None:
    app = client.app
    working = app.state.db  # type: ignore[attr-defined]
    app.state.db = Database(DEAD_DATABASE)  # type: ignore[attr-defined]
    try:
        response = client.get("/healthz")
    finally:
        app.state.db.dispose()  # type: ignore[attr-defined]
        app.state.db = working  # type: ignore[attr-defined]

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["status"] == "down"
    assert body["database"]["error"] == "OperationalError"
    assert "nowhere" not in response.text and "127.0.0.1" not in response.text
    assert set(body) == {"status", "database", "scheduler", "providers"}
    assert client.get("/healthz").status_code == 200
