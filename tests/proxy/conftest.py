"""A broker served by a real uvicorn on loopback, wired to every provider simulator, on both
databases, with rentals running on the simulators' workloads.

Streaming can only be observed through real sockets (httpx's in-process transport buffers a
response whole), so the broker runs in a server thread and every request here goes over TCP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from broker.app import create_app
from broker.settings import CoreSettings
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread, stop_all
from providers.workload_sim import WorkloadState
from proxy.settings import ProxySettings
from tests.rentals.conftest import ADMIN, FakeClock, Sim

# A workload each provider accepts, and the offer filters and id prefix of offers that run it.
WORKLOADS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "empiriolabs": (
        {"mode": "custom", "image": "vllm/vllm-openai", "ports": [8000]},
        {},
        "empiriolabs:",
    ),
    "computegpu": ({"mode": "model", "model": "llama3"}, {}, "computegpu:cloud:"),
    "aivory": ({"mode": "model", "model": "meta-llama/Llama-3-8B"}, {}, "aivory:"),
    "fluence": (
        {"mode": "custom", "image": "ghcr.io/acme/web", "ports": [80]},
        {"instance_type": "container"},
        "fluence:",
    ),
    "icgpu": ({"mode": "ssh", "ssh_key": "ssh-ed25519 AAAAC3Nza test"}, {}, "icgpu:"),
}


@pytest.fixture
def sims() -> Iterator[dict[str, Sim]]:
    started: dict[str, Sim] = {}
    for seed, (name, spec) in enumerate(PROVIDERS.items(), start=1):
        if spec.make_simulator is None or name not in WORKLOADS:
            continue
        knobs = SimulatorKnobs(seed=seed, provision_seconds=0.0, hang_seconds=5.0)
        started[name] = Sim(serve_in_thread(spec.make_simulator(knobs)), knobs)
    yield started
    stop_all(sim.server for sim in started.values())


@dataclass(frozen=True)
class Account:
    id: str
    key_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Broker:
    """The broker over HTTP, a funded account, and helpers to rent and connect."""

    server: RunningServer
    app: FastAPI
    sims: dict[str, Sim]
    api: httpx.Client = field(init=False)
    owner: Account = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.server.url, timeout=30)
        self.owner = self.account()

    @property
    def headers(self) -> dict[str, str]:
        return self.owner.headers

    @property
    def url(self) -> str:
        return self.server.url

    def connect_url(self, rental_id: str) -> str:
        return f"{self.url}/v1/rentals/{rental_id}/connect/"

    def workload(self, provider: str) -> WorkloadState:
        return self.sims[provider].server.app.state.workload  # type: ignore[attr-defined]

    def account(self, credit: str = "100.00") -> Account:
        """A new account with credit."""
        made = self.api.post("/v1/admin/accounts", json={"name": "renter"}, headers=ADMIN)
        assert made.status_code == 201, made.text
        body = made.json()
        granted = self.api.post(
            f"/v1/admin/accounts/{body['account_id']}/credits",
            json={"amount": credit, "reason": "test credit"},
            headers=ADMIN,
        )
        assert granted.status_code == 201, granted.text
        return Account(body["account_id"], body["key_id"], body["api_key"])

    def revoke(self, account: Account) -> None:
        revoked = self.api.delete(
            f"/v1/admin/accounts/{account.id}/keys/{account.key_id}", headers=ADMIN
        )
        assert revoked.status_code == 200, revoked.text

    def rent(self, provider: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A rental on `provider`, created and synced until it runs; carries its rental_key."""
        workload, filters, prefix = WORKLOADS[provider]
        offers = self.api.get(
            "/v1/offers", params={"provider": provider, "gpu_count": 1, "limit": 500, **filters}
        )
        assert offers.status_code == 200, offers.text
        offer = next(o for o in offers.json()["data"] if o["id"].startswith(prefix))
        created = self.api.post(
            "/v1/rentals",
            json={"offer_id": offer["id"], **workload},
            headers=headers or self.headers,
        )
        assert created.status_code == 201, created.text
        rental = created.json()
        self.wait_status(rental["id"], "running", headers or self.headers)
        return rental

    def wait_status(self, rental_id: str, status: str, headers: dict[str, str]) -> dict[str, Any]:
        for _ in range(300):
            self.app.state.status_sync.run()
            rental = self.api.get(f"/v1/rentals/{rental_id}", headers=headers).json()
            if rental["status"] == status:
                return rental
            time.sleep(0.02)
        raise AssertionError(f"rental {rental_id} never became {status}: {rental}")


@pytest.fixture
def make_broker(
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    sims: dict[str, Sim],
) -> Iterator[Callable[..., Broker]]:
    """Build a broker with `ProxySettings` overrides (e.g. a short read timeout)."""
    started: list[Broker] = []

    def build(**proxy: Any) -> Broker:
        adapters = {
            name: PROVIDERS[name].make_adapter(
                ProviderConfig(
                    sim.server.url,
                    PROVIDERS[name].demo_api_key,
                    timeout_seconds=2.0,
                    retry_attempts=2,
                    retry_max_wait_seconds=0.05,
                )
            )
            for name, sim in sims.items()
        }
        app = create_app(
            make_settings(database_url=database_url),
            adapters=adapters,
            start_jobs=False,
            clock=FakeClock(),
            proxy_settings=ProxySettings(_env_file=None, **proxy),  # type: ignore[call-arg]
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


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()
