"""A broker wired to every provider simulator over real HTTP, on both databases, with a clock
the test moves by hand: billing is exact arithmetic on that clock, never on wall time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from broker import ledger
from broker.app import create_app
from broker.settings import CoreSettings
from pricing.money import to_micros
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread

ADMIN = {"Authorization": "Bearer test-admin-key"}


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sim:
    server: RunningServer
    knobs: SimulatorKnobs

    def instances(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.server.url}/_sim/instances").json()
        return body if isinstance(body, list) else body.get("instances", body.get("data", []))

    def interrupt(self, instance_id: str) -> None:
        response = httpx.post(f"{self.server.url}/_sim/instances/{instance_id}/interrupt")
        assert response.status_code < 300, response.text


@pytest.fixture
def sims() -> Iterator[dict[str, Sim]]:
    started: dict[str, Sim] = {}
    for seed, (name, spec) in enumerate(PROVIDERS.items(), start=1):
        if spec.make_simulator is None:  # selfhosted runs on a real Docker engine instead
            continue
        knobs = SimulatorKnobs(seed=seed, provision_seconds=0.0, hang_seconds=5.0)
        started[name] = Sim(serve_in_thread(spec.make_simulator(knobs)), knobs)
    yield started
    for sim in started.values():
        sim.server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Broker:
    client: TestClient
    app: FastAPI
    clock: FakeClock
    sims: dict[str, Sim]
    account_id: str
    headers: dict[str, str]

    def rent(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        return self.client.post("/v1/rentals", json=body, headers=headers)

    def rental(self, rental_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/rentals/{rental_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def wallet(self) -> dict[str, Decimal]:
        body = self.client.get("/v1/wallet", headers=self.headers).json()
        return {k: Decimal(body[k]) for k in ("balance", "held", "available")}

    def micros(self) -> dict[str, int]:
        return {k: to_micros(v) for k, v in self.wallet().items()}

    def sync(self) -> None:
        self.app.state.status_sync.run()

    def wait_status(self, rental_id: str, status: str) -> dict[str, Any]:
        for _ in range(300):
            self.sync()
            rental = self.rental(rental_id)
            if rental["status"] == status:
                return rental
            time.sleep(0.02)
        raise AssertionError(f"rental {rental_id} never became {status}: {rental}")

    def invariants(self) -> ledger.Balances:
        with self.app.state.db.session(read_only=True) as session:
            return ledger.check_invariants(session, self.account_id)

    def offers(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/offers", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def make_broker(
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    sims: dict[str, Sim],
    clock: FakeClock,
) -> Iterator[Callable[..., Broker]]:
    opened: list[TestClient] = []

    def build(credit: str = "100.00", **overrides: Any) -> Broker:
        settings = make_settings(database_url=database_url, **overrides)
        adapters = {
            name: PROVIDERS[name].make_adapter(
                ProviderConfig(
                    sim.server.url,
                    PROVIDERS[name].demo_api_key,
                    timeout_seconds=1.0,
                    retry_attempts=2,
                    retry_max_wait_seconds=0.05,
                )
            )
            for name, sim in sims.items()
        }
        app = create_app(settings, adapters=adapters, start_jobs=False, clock=clock)
        app.state.refresher.refresh_all()
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        made = client.post("/v1/admin/accounts", json={"name": "renter"}, headers=ADMIN).json()
        granted = client.post(
            f"/v1/admin/accounts/{made['account_id']}/credits",
            json={"amount": credit, "reason": "test credit"},
            headers=ADMIN,
        )
        assert granted.status_code == 201, granted.text
        headers = {"Authorization": f"Bearer {made['api_key']}"}
        return Broker(client, app, clock, sims, made["account_id"], headers)

    yield build
    for client in opened:
        client.__exit__(None, None, None)
        client.app.state.db.dispose()  # type: ignore[attr-defined]
