"""A broker served by a real uvicorn on loopback, wired to every provider simulator, on both
databases, with rentals running on the simulators' workloads.

Streaming can only be observed through real sockets (httpx's in-process transport buffers a
response whole), so the broker runs in a server thread and every request here goes over TCP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from broker.app import create_app
from providers.simulators.workload import WorkloadState
from proxy.settings import ProxySettings
from tests.brokers import (
    ADMIN,
    Account,
    BrokerHost,
    FakeClock,
    Sim,
    SocketBroker,
    open_account,
    sim_adapters,
    start_sims,
    stop_sims,
    wait_status,
)

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
    started = start_sims(WORKLOADS)
    yield started
    stop_sims(started)


@dataclass
class Broker(SocketBroker):
    """The broker over HTTP, a funded account, and helpers to rent and connect."""

    owner: Account = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
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
        body = open_account(self.api, credit)
        return Account(body["account_id"], body["api_key"], body["key_id"])

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
        return wait_status(self.app, self.api, rental_id, status, headers)


@pytest.fixture
def make_broker(broker_host: BrokerHost) -> Callable[..., Broker]:
    """Build a broker with `ProxySettings` overrides (e.g. a short read timeout)."""

    def build(**proxy: Any) -> Broker:
        app = create_app(
            broker_host.settings(),
            adapters=sim_adapters(broker_host.sims, timeout_seconds=2.0),
            start_jobs=False,
            clock=FakeClock(),
            proxy_settings=ProxySettings(_env_file=None, **proxy),  # type: ignore[call-arg]
        )
        return broker_host.serve(app, Broker)

    return build


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker()
