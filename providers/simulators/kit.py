"""What every provider simulator's app shares: knobs, faults, errors, test routes, a server.

A simulator is a FastAPI app speaking one provider's documented API. `SimulatorKnobs` makes it
misbehave on purpose (latency, 5xx, hangs, 429 with Retry-After, garbage JSON), either at a
random rate or on the next N requests, refuse the next provisions in the provider's own words,
and slow provisioning down; `PUT /_sim/knobs` turns the same knobs over HTTP.

Every refusal a simulator gives is one `SimError` (status, message, and the provider's error
code where it has one); `install_errors` writes it in the provider's wire format, which is all
that differs between them. `install_sim_routes` adds the inspection routes every simulator
answers beyond its provider's API, in one shape: `GET /_sim/instances` is
`{"instances": [...]}`, each entry as the provider's own API shows it (with its `id`) plus a
`family` where a provider sells several kinds, and `POST /_sim/instances/{id}/interrupt` takes
a spot instance back (or refuses, as the provider would, where there is no spot capacity) and
answers with the instance. `rfc3339` writes timestamps as each provider does, and
`serve_in_thread` runs an app on a free loopback port under a real uvicorn, so adapters are
tested over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp

Fault = Literal["5xx", "timeout", "429", "garbage"]
# Business refusals of a provision, each answered in the provider's own wire format.
Refusal = Literal["capacity", "payment", "conflict", "gone"]
KNOBS_PATH = "/_sim/knobs"
INSTANCES_PATH = "/_sim/instances"


class SimError(Exception):
    """A simulator's refusal: an HTTP `status`, a `message` and the provider's error `code`.

    Each simulator renders it in its provider's format (`install_errors`); `code` is empty for
    providers whose errors carry a message only.
    """

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def rfc3339(moment: datetime, timespec: str = "auto") -> str:
    """A UTC moment as RFC 3339 with a `Z`, to the precision `timespec` names."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


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
    async def misbehave(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
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


def install_errors(
    app: FastAPI, render: Callable[[SimError], object], invalid: tuple[str, str] | None = None
) -> None:
    """Answer every `SimError` as `render` writes it, with the error's status.

    With `invalid` (a message prefix and an error code), a request that fails validation is a
    400 in the same format naming the bad fields, instead of FastAPI's own 422.
    """

    @app.exception_handler(SimError)
    async def refused(request: Request, exc: SimError) -> JSONResponse:
        return JSONResponse(render(exc), status_code=exc.status)

    if invalid is not None:
        prefix, code = invalid

        @app.exception_handler(RequestValidationError)
        async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
            fields = ", ".join(str(error["loc"][-1]) for error in exc.errors())
            return await refused(request, SimError(400, f"{prefix}: {fields}", code))


async def json_body(request: Request, code: str = "") -> Any:
    """The request's JSON body, or a 400 `SimError` with `code` when it is not JSON."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SimError(400, "The body is not JSON", code) from None


def require_bearer(
    status: int, message: str, code: str = "", accept: Callable[[str], bool] = bool
) -> Callable[[Request], None]:
    """A route dependency: refuse, as `SimError(status, message, code)`, a request without an
    `Authorization: Bearer <key>` whose key `accept`s (by default, any non-empty key)."""

    def check(request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not accept(key.strip()):
            raise SimError(status, message, code)

    return check


def install_sim_routes(
    app: FastAPI,
    instances: Callable[[str], list[dict[str, Any]]],
    interrupt: Callable[[str, str], dict[str, Any]],
) -> None:
    """The inspection routes: every instance the account has had, and a spot interruption.

    Both callables receive the simulator's own base URL last, for instances whose JSON names
    an address under it. They run on the event loop, as the provider routes of the simulators
    that keep no lock do, so they never race those.
    """

    @app.get(INSTANCES_PATH)
    async def every_instance(request: Request) -> dict[str, object]:
        return {"instances": instances(base_url(request))}

    @app.post(INSTANCES_PATH + "/{instance_id}/interrupt")
    async def interrupt_instance(instance_id: str, request: Request) -> dict[str, Any]:
        return interrupt(instance_id, base_url(request))


def base_url(request: Request) -> str:
    """The URL the simulator was reached at, without a trailing slash."""
    return str(request.base_url).rstrip("/")


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

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
