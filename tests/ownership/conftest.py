"""A broker served over real HTTP (uvicorn on loopback), wired to every provider simulator with
adapters built as the broker builds them (tagged with its deployment id), on both databases.

The clock is the wall clock: placements are stamped with it, and reconciliation's grace period
is measured against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from broker.app import create_app
from broker.ownership import resolve_deployment
from broker.settings import CoreSettings
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.rental import RentalProvider
from providers.simkit import RunningServer, serve_in_thread, stop_all
from tests.rentals.conftest import ADMIN, Sim
from tests.rentals.conftest import sims as sims  # the simulators, as a fixture

SECRET_KEY = Fernet.generate_key().decode()


@dataclass
class Broker:
    server: RunningServer
    app: FastAPI
    sims: dict[str, Sim]
    api: httpx.Client = field(init=False)
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.server.url, timeout=30)
        made = self.api.post("/v1/admin/accounts", json={"name": "renter"}, headers=ADMIN)
        assert made.status_code == 201, made.text
        granted = self.api.post(
            f"/v1/admin/accounts/{made.json()['account_id']}/credits",
            json={"amount": "100.00", "reason": "test credit"},
            headers=ADMIN,
        )
        assert granted.status_code == 201, granted.text
        self.headers = {"Authorization": f"Bearer {made.json()['api_key']}"}

    @property
    def deployment(self) -> str:
        return str(self.app.state.deployment)

    def adapter(self, provider: str) -> RentalProvider:
        adapter: RentalProvider = self.app.state.reconciler.adapters[provider]
        return adapter

    def rent(self, offer_id: str, workload: dict[str, Any]) -> dict[str, Any]:
        created = self.api.post(
            "/v1/rentals", json={"offer_id": offer_id, **workload}, headers=self.headers
        )
        assert created.status_code == 201, created.text
        return created.json()  # type: ignore[no-any-return]

    def wait_status(self, rental_id: str, status: str) -> dict[str, Any]:
        for _ in range(300):
            self.app.state.status_sync.run()
            rental = self.api.get(f"/v1/rentals/{rental_id}", headers=self.headers).json()
            if rental["status"] == status:
                return rental  # type: ignore[no-any-return]
            time.sleep(0.02)
        raise AssertionError(f"rental {rental_id} never became {status}: {rental}")

    def findings(self) -> dict[str, Any]:
        answer = self.api.get("/v1/admin/reconciliation", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def make_broker(
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    sims: dict[str, Sim],
) -> Iterator[Callable[..., Broker]]:
    """`build(**settings)`: a broker on this test's database; `secret_key` defaults to a key."""
    started: list[Broker] = []

    def build(**overrides: Any) -> Broker:
        values: dict[str, Any] = {"database_url": database_url, "secret_key": SECRET_KEY}
        values.update(overrides)
        settings = make_settings(**values)
        probe = create_app(settings, adapters={}, start_jobs=False)
        deployment = resolve_deployment(probe.state.db, settings.deployment_id)
        probe.state.db.dispose()
        adapters = {
            name: PROVIDERS[name].make_adapter(
                ProviderConfig(
                    sim.server.url,
                    PROVIDERS[name].demo_api_key,
                    timeout_seconds=2.0,
                    retry_attempts=2,
                    retry_max_wait_seconds=0.05,
                    deployment_id=deployment,
                )
            )
            for name, sim in sims.items()
        }
        app = create_app(
            settings, adapters=adapters, start_jobs=False, clock=lambda: datetime.now(UTC)
        )
        app.state.refresher.refresh_all()
        broker = Broker(serve_in_thread(app), app, sims)
        started.append(broker)
        return broker

    yield build
    for broker in started:
        broker.api.close()
    stop_all(broker.server for broker in started)
    for broker in started:
        broker.app.state.db.dispose()
