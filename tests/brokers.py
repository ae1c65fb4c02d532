"""What the tests that run a whole broker against the provider simulators share.

Several suites (rentals, the proxy, ownership, logs, operations, self-hosted) build a broker the
same way: every simulated provider started from its registry spec, an adapter per simulator with
test-sized timeouts, an admin who opens a funded account, and a loop that runs the status sync
until a rental reaches the status a test waits for. Each suite still decides how it serves the
broker (in-process, or over a real socket) and what its own `Broker` record offers; the pieces
here are the ones they used to write out each for itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from broker.settings import CoreSettings
from providers.base import Provider, ProviderConfig
from providers.registry import PROVIDERS
from providers.simulators.kit import RunningServer, SimulatorKnobs, serve_in_thread, stop_all

ADMIN = {"Authorization": "Bearer test-admin-key"}
STATUS_POLLS = 300
STATUS_PAUSE = 0.02


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sim:
    """One provider's simulator, running, and the knobs it reads."""

    server: RunningServer
    knobs: SimulatorKnobs

    def instances(self) -> list[dict[str, Any]]:
        """Every rental the simulator has made, in its own words (the kit's one answer shape)."""
        body = httpx.get(f"{self.server.url}/_sim/instances").json()
        instances: list[dict[str, Any]] = body["instances"]
        return instances

    def interrupt(self, instance_id: str) -> None:
        response = httpx.post(f"{self.server.url}/_sim/instances/{instance_id}/interrupt")
        assert response.status_code < 300, response.text


def start_sims(only: Collection[str] | None = None) -> dict[str, Sim]:
    """Every simulated provider (or those in `only`), each from its own seed, rentals instant.

    A forced hang lasts 2 s, past the 1 s provider timeout of the rentals suite (the one that
    forces hangs), and holds up the simulator's shutdown no longer. Self-hosted has no
    simulator: it runs on a real Docker engine in tests/selfhosted/.
    """
    started: dict[str, Sim] = {}
    for seed, (name, spec) in enumerate(PROVIDERS.items(), start=1):
        if spec.make_simulator is None or (only is not None and name not in only):
            continue
        knobs = SimulatorKnobs(seed=seed, provision_seconds=0.0, hang_seconds=2.0)
        started[name] = Sim(serve_in_thread(spec.make_simulator(knobs)), knobs)
    return started


def stop_sims(sims: dict[str, Sim]) -> None:
    stop_all(sim.server for sim in sims.values())


def sim_adapters(
    sims: dict[str, Sim], timeout_seconds: float, deployment_id: str | None = None
) -> dict[str, Provider]:
    """An adapter per simulator, holding its demo key, as the broker would build it."""
    return {
        name: PROVIDERS[name].make_adapter(
            ProviderConfig(
                sim.server.url,
                PROVIDERS[name].demo_api_key,
                timeout_seconds=timeout_seconds,
                retry_attempts=2,
                retry_max_wait_seconds=0.05,
                deployment_id=deployment_id,
            )
        )
        for name, sim in sims.items()
    }


def open_account(api: httpx.Client, credit: str = "100.00") -> dict[str, Any]:
    """A new renter account granted `credit`, as the admin API answers its creation."""
    made = api.post("/v1/admin/accounts", json={"name": "renter"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    granted = api.post(
        f"/v1/admin/accounts/{body['account_id']}/credits",
        json={"amount": credit, "reason": "test credit"},
        headers=ADMIN,
    )
    assert granted.status_code == 201, granted.text
    return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_status(
    app: FastAPI, api: httpx.Client, rental_id: str, status: str, headers: dict[str, str]
) -> dict[str, Any]:
    """Run the status sync until the API shows rental `rental_id` in `status`, boundedly."""
    for _ in range(STATUS_POLLS):
        app.state.status_sync.run()
        response = api.get(f"/v1/rentals/{rental_id}", headers=headers)
        assert response.status_code == 200, response.text
        rental: dict[str, Any] = response.json()
        if rental["status"] == status:
            return rental
        time.sleep(STATUS_PAUSE)
    raise AssertionError(f"rental {rental_id} never became {status}: {rental}")


def open_client(app: FastAPI, opened: list[TestClient]) -> TestClient:
    """An in-process client for `app`, started (lifespan run) and kept for `close_clients`."""
    client = TestClient(app)
    client.__enter__()
    opened.append(client)
    return client


def close_clients(opened: Iterable[TestClient]) -> None:
    for client in opened:
        client.__exit__(None, None, None)
        client.app.state.db.dispose()  # type: ignore[attr-defined]


class Served(Protocol):
    server: RunningServer
    app: FastAPI
    api: httpx.Client


def close_served(brokers: Sequence[Served]) -> None:
    """Close brokers served over a socket: their clients, their servers, then their databases."""
    for broker in brokers:
        broker.api.close()
    stop_all(broker.server for broker in brokers)
    for broker in brokers:
        broker.app.state.db.dispose()


@dataclass
class SocketBroker:
    """A broker app served on a loopback thread, the simulators behind it, and a client for it."""

    server: RunningServer
    app: FastAPI
    sims: dict[str, Sim]
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.server.url, timeout=30)


@dataclass(frozen=True)
class Account:
    """An account the admin opened, and the key (and its id, where a test needs it) it was given."""

    id: str
    key: str
    key_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


ServedBroker = TypeVar("ServedBroker", bound=Served)


class BrokerHost:
    """Serves one test's brokers over loopback sockets, on its database, next to its simulators.

    A suite's `make_broker` builds the app its own way (settings, adapters, clock, proxy
    settings) and hands it to `serve`, which reads the catalog once, starts the server thread
    and wraps the result in the suite's own `Broker` record. Whatever was served is closed when
    the test ends, through `close_served`.
    """

    def __init__(
        self, make_settings: Callable[..., CoreSettings], database_url: str, sims: dict[str, Sim]
    ) -> None:
        self.make_settings = make_settings
        self.database_url = database_url
        self.sims = sims
        self.started: list[Served] = []

    def settings(self, **overrides: Any) -> CoreSettings:
        """Test settings on this test's database; `overrides` may replace any field."""
        return self.make_settings(**{"database_url": self.database_url, **overrides})

    def serve(
        self, app: FastAPI, wrap: Callable[[RunningServer, FastAPI, dict[str, Sim]], ServedBroker]
    ) -> ServedBroker:
        app.state.refresher.refresh_all()
        broker = wrap(serve_in_thread(app), app, self.sims)
        self.started.append(broker)
        return broker

    def close(self) -> None:
        close_served(self.started)
