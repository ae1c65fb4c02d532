"""A loopback AIVory: the documented offer listing and rental endpoints over HTTP, behind a key.

Any key starting with `si_` is accepted, as AIVory's keys do; anything else is a 401. State lives
in `AivoryState` (`sim_state.py`). A running rental's `endpoint`
(`/v1/gpu/rentals/{id}/endpoint/...`) serves the shared workload (`providers.workload_sim`) to an
AIVory key, and 401s any other. Each read of the listing moves every price one step of the
knobs' random walk and keeps the result, then applies the filters. Errors are AIVory's
`{"error": {"code", "message"}}`.

Beyond the documented API, for tests and the demo: `GET /_sim/instances` lists every rental with
its status, and `POST /_sim/instances/{id}/interrupt` takes a spot rental's GPU back. AIVory
documents no rental listing, so the simulator offers none on the public paths either.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers

from providers.aivory.sim_state import AivoryState, SimError
from providers.simkit import SimulatorKnobs, install_knobs
from providers.workload_sim import WorkloadState, bearer_key, create_workload_app

__all__ = ["AivoryState", "create_simulator"]

KEY_PREFIX = "si_"


def require_key(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip().startswith(KEY_PREFIX):
        raise SimError(
            401, "unauthorized", "Missing or invalid API key: send Authorization: Bearer si_..."
        )


def _refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `AivoryState`."""
    knobs = knobs or SimulatorKnobs()
    state = AivoryState(knobs)
    app = FastAPI(title="AIVory simulator")
    app.state.sim = state
    app.state.workload = WorkloadState("aivory")
    install_knobs(app, knobs)
    app.mount(
        "/v1/gpu/rentals/{instance_id}/endpoint",
        create_workload_app(app.state.workload, endpoint_gate(state)),
    )
    authorized = [Depends(require_key)]

    @app.exception_handler(SimError)
    async def refused(request: Request, exc: SimError) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status
        )

    @app.get("/v1/gpu/offers", dependencies=authorized)
    def offers(
        request: Request,
        gpu_model: str | None = None,
        provider: str | None = None,
        min_vram: float | None = None,
        max_price: float | None = None,
    ) -> dict[str, object]:
        state.record(request)
        data = state.read_offers(gpu_model, provider, min_vram, max_price)
        return {"object": "list", "count": len(data), "data": data}

    @app.post("/v1/gpu/rent", status_code=201, dependencies=authorized)
    async def rent(request: Request) -> dict[str, object]:
        state.record(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SimError(400, "invalid_request", "The body is not JSON") from None
        created = state.rent(body, _base_url(request))
        await asyncio.sleep(knobs.accept_delay_seconds)
        return created

    @app.get("/v1/gpu/rentals/{rental_id}", dependencies=authorized)
    def rental(rental_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.get(rental_id, _base_url(request))

    @app.delete("/v1/gpu/rentals/{rental_id}", dependencies=authorized)
    def terminate(rental_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.terminate(rental_id, _base_url(request))

    @app.get("/_sim/instances")
    def all_rentals(request: Request) -> dict[str, object]:
        return {"instances": state.all_rentals(_base_url(request))}

    @app.post("/_sim/instances/{rental_id}/interrupt")
    def interrupt(rental_id: str, request: Request) -> dict[str, object]:
        return state.interrupt(rental_id, _base_url(request))

    return app
