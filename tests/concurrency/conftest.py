"""A broker served by a real uvicorn on a loopback port, raced by real parallel HTTP clients.

The broker runs on both databases (`database_url`) with one EmpirioLabs simulator, the provider
that can stop and start its instances. The simulator sits behind a counter of the calls it
receives, so a test can prove that a race made exactly one provider call. The broker's clock is
a hand-moved one, as in the other rental tests: nothing here asserts on wall time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from broker import ledger
from broker.app import create_app
from broker.settings import CoreSettings
from pricing.money import to_micros
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.simulators.kit import RunningServer, SimulatorKnobs, serve_in_thread

PROVIDER = "empiriolabs"
ADMIN = {"Authorization": "Bearer test-admin-key"}
WORKLOAD = {"image": "vllm/vllm-openai:latest", "ports": [8000]}


class CallCounter:
    """ASGI middleware counting each provider API call by method and path (not `/_sim`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sim"):
            with self._lock:
                self.calls[(scope["method"], scope["path"])] += 1
        await self.app(scope, receive, send)

    def count(self, method: str, path_suffix: str = "") -> int:
        with self._lock:
            return sum(
                n for (m, p), n in self.calls.items() if m == method and p.endswith(path_suffix)
            )


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


@dataclass
class Served:
    """The broker on its port, its simulator, and one account's key."""

    url: str
    app: Any
    server: RunningServer
    sim: RunningServer
    knobs: SimulatorKnobs
    counter: CallCounter
    clock: FakeClock
    account_id: str
    headers: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60)

    def offer(self) -> dict[str, Any]:
        """The cheapest single-GPU offer of the simulated provider."""
        with self.client() as client:
            response = client.get(
                "/v1/offers", params={"provider": PROVIDER, "gpu_count": 1, "limit": 500}
            )
        assert response.status_code == 200, response.text
        offers = response.json()["data"]
        assert offers
        return min(offers, key=lambda o: to_micros(o["price_per_hour"]))

    def wallet(self) -> dict[str, int]:
        with self.client() as client:
            body = client.get("/v1/wallet").json()
        return {k: to_micros(body[k]) for k in ("balance", "held", "available")}

    def invariants(self) -> ledger.Balances:
        with self.app.state.db.session(read_only=True) as session:
            return ledger.check_invariants(session, self.account_id)

    def sync(self) -> None:
        self.app.state.status_sync.run()

    def rental(self, rental_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/v1/rentals/{rental_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_running(self, rental_id: str) -> dict[str, Any]:
        for _ in range(200):
            self.sync()
            rental = self.rental(rental_id)
            if rental["status"] == "running":
                return rental
        raise AssertionError(f"rental {rental_id} never became running: {rental}")


def race(
    url: str, headers: dict[str, str], calls: list[tuple[str, str, dict[str, Any] | None]]
) -> list[httpx.Response]:
    """Send every (method, path, json) at once, each from its own thread and its own client,
    released together by a barrier; the responses come back in the order of `calls`."""
    barrier = threading.Barrier(len(calls))
    responses: list[httpx.Response | BaseException | None] = [None] * len(calls)

    def send(index: int, method: str, path: str, body: dict[str, Any] | None) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            barrier.wait()
            try:
                responses[index] = client.request(method, path, json=body)
            except httpx.HTTPError as exc:  # kept and re-raised by the caller, never lost
                responses[index] = exc

    threads = [
        threading.Thread(target=send, args=(i, *call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for response in responses:
        if not isinstance(response, httpx.Response):
            raise AssertionError(f"a racing request got no response: {response!r}")
    return [r for r in responses if isinstance(r, httpx.Response)]


@pytest.fixture
def serve(
    make_settings: Callable[..., CoreSettings], database_url: str
) -> Iterator[Callable[..., Served]]:
    """Start a broker (and its simulator) on loopback ports; `credit` in USD for its account."""
    started: list[tuple[RunningServer, RunningServer, Any]] = []

    def build(credit: str = "1000.00", **overrides: Any) -> Served:
        knobs = SimulatorKnobs(seed=3, provision_seconds=0.0, hang_seconds=5.0)
        counter = CallCounter(PROVIDERS[PROVIDER].make_simulator(knobs))
        sim = serve_in_thread(counter)
        adapter = PROVIDERS[PROVIDER].make_adapter(
            ProviderConfig(
                sim.url,
                PROVIDERS[PROVIDER].demo_api_key,
                timeout_seconds=10.0,
                retry_attempts=2,
                retry_max_wait_seconds=0.05,
            )
        )
        clock = FakeClock()
        settings = make_settings(database_url=database_url, min_hold_seconds=3600, **overrides)
        app = create_app(settings, adapters={PROVIDER: adapter}, start_jobs=False, clock=clock)
        app.state.refresher.refresh_all()
        server = serve_in_thread(app)
        started.append((server, sim, app))
        with httpx.Client(base_url=server.url, headers=ADMIN, timeout=30) as admin:
            made = admin.post("/v1/admin/accounts", json={"name": "racer"}).json()
            granted = admin.post(
                f"/v1/admin/accounts/{made['account_id']}/credits",
                json={"amount": credit, "reason": "test credit"},
            )
        assert granted.status_code == 201, granted.text
        headers = {"Authorization": f"Bearer {made['api_key']}"}
        return Served(
            server.url, app, server, sim, knobs, counter, clock, made["account_id"], headers
        )

    yield build
    for server, sim, app in started:
        server.stop()
        sim.stop()
        app.state.db.dispose()
