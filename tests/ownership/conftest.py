"""A broker served over real HTTP (uvicorn on loopback), wired to every provider simulator with
adapters built as the broker builds them (tagged with its deployment id), on both databases.

The clock is the wall clock: placements are stamped with it, and reconciliation's grace period
is measured against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet

from broker.app import create_app
from broker.ownership import resolve_deployment
from providers.rental import RentalProvider
from tests.brokers import (
    ADMIN,
    BrokerHost,
    SocketBroker,
    bearer,
    open_account,
    sim_adapters,
    wait_status,
)
from tests.rentals.conftest import sims as sims  # the simulators, as a fixture

SECRET_KEY = Fernet.generate_key().decode()


@dataclass
class Broker(SocketBroker):
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.headers = bearer(open_account(self.api)["api_key"])

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
        return wait_status(self.app, self.api, rental_id, status, self.headers)

    def findings(self) -> dict[str, Any]:
        answer = self.api.get("/v1/admin/reconciliation", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


@pytest.fixture
def make_broker(broker_host: BrokerHost) -> Callable[..., Broker]:
    """`build(**settings)`: a broker on this test's database; `secret_key` defaults to a key."""

    def build(**overrides: Any) -> Broker:
        settings = broker_host.settings(**{"secret_key": SECRET_KEY, **overrides})
        probe = create_app(settings, adapters={}, start_jobs=False)
        deployment = resolve_deployment(probe.state.db, settings.deployment_id)
        probe.state.db.dispose()
        adapters = sim_adapters(broker_host.sims, timeout_seconds=2.0, deployment_id=deployment)
        app = create_app(
            settings, adapters=adapters, start_jobs=False, clock=lambda: datetime.now(UTC)
        )
        return broker_host.serve(app, Broker)

    return build
