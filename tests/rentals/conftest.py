"""A broker wired to every provider simulator over real HTTP, on both databases, with a clock
the test moves by hand: billing is exact arithmetic on that clock, never on wall time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from tests.brokers import (
    FakeClock,
    Sim,
    bearer,
    close_clients,
    open_account,
    open_client,
    sim_adapters,
    start_sims,
    stop_sims,
    wait_status,
)


@pytest.fixture
def sims() -> Iterator[dict[str, Sim]]:
    started = start_sims()
    yield started
    stop_sims(started)


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
        return wait_status(self.app, self.client, rental_id, status, self.headers)

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
        adapters = sim_adapters(sims, timeout_seconds=1.0)
        app = create_app(settings, adapters=adapters, start_jobs=False, clock=clock)
        app.state.refresher.refresh_all()
        client = open_client(app, opened)
        made = open_account(client, credit)
        return Broker(client, app, clock, sims, made["account_id"], bearer(made["api_key"]))

    yield build
    close_clients(opened)
