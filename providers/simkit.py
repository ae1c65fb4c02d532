"""What every provider simulator shares: fault knobs, price drift and a loopback server thread.

A simulator is a FastAPI app speaking one provider's documented API. `SimulatorKnobs` makes it
misbehave on purpose (latency, 5xx, hangs, 429 with Retry-After, garbage JSON), either at a
random rate or on the next N requests, and `serve_in_thread` runs it on a free loopback port
under a real uvicorn so adapters are tested over real HTTP.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp

Fault = Literal["5xx", "timeout", "429", "garbage"]
# Business refusals of a provision, each answered in the provider's own wire format.
Refusal = Literal["capacity", "payment", "conflict", "gone"]
KNOBS_PATH = "/_sim/knobs"


@dataclass
class SimulatorKnobs:
    """How a simulator misbehaves. Tests flip these directly or through `PUT /_sim/knobs`."""

    latency_seconds: float = 0.0
    error_rate: float = 0.0
    error_kinds: tuple[Fault, ...] = ("5xx", "timeout", "429", "garbage")
    hang_seconds: float = 30.0
    retry_after_seconds: float = 1.0
    price_drift: float = 0.0
    seed: int = 7
    forced: deque[Fault] = field(default_factory=deque)
    # Rentals: seconds from provision to running; seconds the provision response is held back
    # after the instance exists (a broker can die in that window); refusals to serve next.
    provision_seconds: float = 1.0
    accept_delay_seconds: float = 0.0
    refusals: deque[Refusal] = field(default_factory=deque)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fail_next(self, count: int, kind: Fault) -> None:
        """Make the next `count` requests fail with `kind`, whatever the error rate."""
        self.forced.extend([kind] * count)

    def refuse_next(self, count: int, kind: Refusal) -> None:
        """Make the next `count` provisions fail with the business refusal `kind`."""
        self.refusals.extend([kind] * count)

    def next_refusal(self) -> Refusal | None:
        return self.refusals.popleft() if self.refusals else None

    def next_fault(self) -> Fault | None:
        if self.forced:
            return self.forced.popleft()
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            return self.rng.choice(self.error_kinds)
        return None

    def drift(self, price: float) -> float:
        """A price after one refresh's random walk of at most `price_drift` (a fraction)."""
        if self.price_drift <= 0:
            return price
        step = self.rng.uniform(-self.price_drift, self.price_drift)
        return max(0.01, round(price * (1 + step), 4))


class KnobsUpdate(BaseModel):
    latency_seconds: float | None = None
    error_rate: float | None = None
    error_kinds: list[Fault] | None = None
    hang_seconds: float | None = None
    retry_after_seconds: float | None = None
    price_drift: float | None = None
    fail_next: int | None = None
    fail_kind: Fault = "5xx"
    provision_seconds: float | None = None
    accept_delay_seconds: float | None = None
    refuse_next: int | None = None
    refuse_kind: Refusal = "capacity"


async def _fault_response(knobs: SimulatorKnobs, fault: Fault) -> Response:
    if fault == "timeout":
        await asyncio.sleep(knobs.hang_seconds)
        return JSONResponse({"error": "gateway timeout"}, status_code=504)
    if fault == "429":
        return JSONResponse(
            {"error": "rate limited"},
            status_code=429,
            headers={"Retry-After": f"{knobs.retry_after_seconds:g}"},
        )
    if fault == "garbage":
        return Response(b"<html>502 Bad Gateway</html>{", media_type="application/json")
    return JSONResponse({"error": "internal error"}, status_code=503)


def install_knobs(app: FastAPI, knobs: SimulatorKnobs) -> None:
    """Wire the fault middleware and the knobs endpoint into a simulator app."""
    app.state.knobs = knobs

    @app.middleware("http")
    async def misbehave(request: Request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/_sim"):
            return await call_next(request)
        if knobs.latency_seconds > 0:
            await asyncio.sleep(knobs.latency_seconds)
        fault = knobs.next_fault()
        if fault is not None:
            return await _fault_response(knobs, fault)
        return await call_next(request)

    @app.put(KNOBS_PATH)
    def update_knobs(update: KnobsUpdate) -> dict[str, object]:
        for name in (
            "latency_seconds",
            "error_rate",
            "hang_seconds",
            "retry_after_seconds",
            "price_drift",
            "provision_seconds",
            "accept_delay_seconds",
        ):
            value = getattr(update, name)
            if value is not None:
                setattr(knobs, name, value)
        if update.error_kinds is not None:
            knobs.error_kinds = tuple(update.error_kinds)
        if update.fail_next:
            knobs.fail_next(update.fail_next, update.fail_kind)
        if update.refuse_next:
            knobs.refuse_next(update.refuse_next, update.refuse_kind)
        return {"ok": True}


class RunningServer:
    """A uvicorn server on a loopback port, in a daemon thread."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.app = app
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> RunningServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                title = getattr(self.app, "title", "an app")
                raise RuntimeError(f"server for {title} did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def stop_all(servers: Iterable[RunningServer]) -> None:
    """Stop servers together: each takes a tick of its loop to notice, so ask all first."""
    stopping = list(servers)
    for server in stopping:
        server._server.should_exit = True
    for server in stopping:
        server.stop()


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Start `app` on a free loopback port and return once it accepts connections."""
    return RunningServer(app, host, port).start()
