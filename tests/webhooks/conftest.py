"""A webhook receiver on loopback that verifies every signature, and brokers that send to it.

The receiver is a real HTTP server on 127.0.0.1 (the brokers under test set
`GPUBROKER_WEBHOOK_ALLOW_PRIVATE=true`, as a deployment on one machine would). Each request it
gets is checked with the `standardwebhooks` library against the endpoint's secret, and kept with
its verdict; the test scripts its answers (a 500 first, a slow answer) by pushing statuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook, WebhookVerificationError

from tests.brokers import Sim, start_sims, stop_sims
from tests.rentals import conftest as rentals
from tests.rentals.conftest import Broker as RentalBroker
from tests.rentals.conftest import clock as clock

# The real `gpubroker serve` replicas of tests/replicas, for the tests across processes.
from tests.replicas.conftest import (  # noqa: F401
    deployment,
    fork_server,
    replica_database_url,
    simulators,
)

SECRET_KEY = Fernet.generate_key().decode()
WORKLOAD = {"mode": "custom", "image": "vllm/vllm-openai:latest", "ports": [8000]}
PROVIDER = "empiriolabs"  # stops and starts, and runs the custom workload
SPOT_PROVIDER = "aivory"  # spot instances the simulator can interrupt


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """What the loopback server got; `answers` are the statuses of its next replies."""

    url: str
    secret: str | None = None
    answers: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        if self.secret is None:
            return False
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def take(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.received.append(Received(headers, body, self.verify(headers, body)))
            return self.answers.pop(0) if self.answers else 200

    def ids(self) -> list[str]:
        with self.lock:
            return [r.id for r in self.received]

    def types(self) -> list[str]:
        with self.lock:
            return [str(r.json["type"]) for r in self.received]

    def wait_for(self, count: int, seconds: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.received)} requests, not {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state.take(headers, body)
            if state.delay_seconds:
                time.sleep(state.delay_seconds)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks")
    # Polled often for shutdown, so that stopping it at the end of a test takes no half second.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def sims() -> Iterator[dict[str, Sim]]:
    started = start_sims(only={PROVIDER, SPOT_PROVIDER})
    yield started
    stop_sims(started)


@dataclass
class Broker(RentalBroker):
    """A rentals-suite broker (jobs not started) with helpers for its webhooks."""

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.headers)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers)

    def add_webhook(self, receiver: Receiver, events: list[str]) -> dict[str, Any]:
        response = self.post("/v1/webhooks", {"url": receiver.url, "events": events})
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        receiver.secret = made["secret"]
        return made

    def deliver(self) -> int:
        """One pass of the delivery job (the background one does not run in these tests)."""
        sent: int = self.app.state.deliverer.run_once()
        return sent

    def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        response = self.get(f"/v1/webhooks/{webhook_id}/deliveries")
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def rent_workload(self) -> dict[str, Any]:
        """A rental of the first plain offer of `PROVIDER`, created (not yet running)."""
        offer = self.offers(provider=PROVIDER, gpu_count=1)[0]
        response = self.rent({"offer_id": offer["id"], **WORKLOAD})
        assert response.status_code == 201, response.text
        rented: dict[str, Any] = response.json()
        return rented


rental_broker = rentals.make_broker  # the rentals suite's broker, on this folder's `sims`


@pytest.fixture
def make_broker(rental_broker: Callable[..., RentalBroker]) -> Callable[..., Broker]:
    """`build(**settings)`: a broker on this test's database, jobs not started, webhooks allowed
    to loopback and retried without pauses unless the settings say otherwise."""

    def build(**overrides: Any) -> Broker:
        values: dict[str, Any] = {
            "secret_key": SECRET_KEY,
            "webhook_allow_private": True,
            "webhook_retry_seconds": (0, 0),
            "webhook_timeout_seconds": 2.0,
            **overrides,
        }
        return Broker(**vars(rental_broker(**values)))

    return build
