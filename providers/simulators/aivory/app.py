"""A loopback AIVory: the documented offer listing and rental endpoints over HTTP, behind a key.

Any key starting with `si_` is accepted, as AIVory's keys do; anything else is a 401. State lives
in `AivoryState` (`state.py`). A running rental's `endpoint`
(`/v1/gpu/rentals/{id}/endpoint/...`) serves the shared workload (`..workload`) to an
AIVory key, and 401s any other. Each read of the listing moves every price one step of the
knobs' random walk and keeps the result, then applies the filters. Errors are AIVory's
`{"error": {"code", "message"}}`.

Beyond the documented API, for tests and the demo, the kit's `/_sim` routes: the instances are
the rentals (with their `rental_id` as `id` too), and an interruption takes a spot rental's GPU
back. AIVory documents no rental listing, so the simulator offers none on the public paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from providers.simulators.aivory.state import AivoryState
from providers.simulators.book import simulator_app
from providers.simulators.kit import (
    SimError,
    SimulatorKnobs,
    base_url,
    json_body,
    require_bearer,
)
from providers.simulators.workload import WorkloadState, bearer_key, create_workload_app

KEY_PREFIX = "si_"


require_key = require_bearer(
    401,
    "Missing or invalid API key: send Authorization: Bearer si_...",
    "unauthorized",
    accept=lambda key: key.startswith(KEY_PREFIX),
)


def _render(error: SimError) -> dict[str, object]:
    return {"error": {"code": error.code, "message": error.message}}


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(_render(SimError(status, message, code)), status_code=status)


def endpoint_gate(state: AivoryState) -> Callable[[str | None, Headers], Response | None]:
    """The endpoint's check: an AIVory key, and a rental that is running."""

    def gate(rental_id: str | None, headers: Headers) -> Response | None:
        key = bearer_key(headers)
        if key is None or not key.startswith(KEY_PREFIX):
            return _refusal(401, "unauthorized", "Missing or invalid API key")
        status = state.status_of(rental_id or "")
        if status is None:
            return _refusal(404, "not_found", f"No rental {rental_id}")
        if status != "running":
            return _refusal(409, "conflict", f"Rental {rental_id} is {status}")
        return None

    return gate


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `AivoryState`."""
    state = AivoryState(knobs or SimulatorKnobs())
    workload = WorkloadState("aivory")
    app = simulator_app(
        "AIVory simulator",
        state,
        _render,
        workload=workload,
    )
    app.mount(
        "/v1/gpu/rentals/{instance_id}/endpoint",
        create_workload_app(workload, endpoint_gate(state)),
    )
    authorized = [Depends(require_key), Depends(state.record)]

    @app.get("/v1/gpu/offers", dependencies=authorized)
    def offers(
        gpu_model: str | None = None,
        provider: str | None = None,
        min_vram: float | None = None,
        max_price: float | None = None,
    ) -> dict[str, object]:
        data = state.read_offers(gpu_model, provider, min_vram, max_price)
        return {"object": "list", "count": len(data), "data": data}

    @app.post("/v1/gpu/rent", status_code=201, dependencies=authorized)
    async def rent(request: Request) -> dict[str, object]:
        body = await json_body(request, "invalid_request")
        created = state.rent(body, base_url(request))
        await asyncio.sleep(state.knobs.accept_delay_seconds)
        return created

    @app.get("/v1/gpu/rentals/{rental_id}", dependencies=authorized)
    def rental(rental_id: str, request: Request) -> dict[str, object]:
        return state.get(rental_id, base_url(request))

    @app.delete("/v1/gpu/rentals/{rental_id}", dependencies=authorized)
    def terminate(rental_id: str, request: Request) -> dict[str, object]:
        return state.terminate(rental_id, base_url(request))

    return app
