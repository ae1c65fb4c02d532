"""A loopback IC GPU: the public tier listing and the instance endpoints over real HTTP.

State lives in `IcGpuState` (`state.py`). Each read of the listing moves every tier's
interactive price one step of the knobs' random walk and keeps the result; the batch price
follows it. The instance endpoints need `Authorization: Bearer <any non-empty key>`. Errors are
IC GPU's `{"code", "message"}`; a create echoes its `Idempotency-Key`.

Beyond the documented API, for tests and the demo, the kit's `/_sim` routes: an interruption
preempts a batch instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from providers.simulators.book import simulator_app
from providers.simulators.icgpu.state import IcGpuState
from providers.simulators.kit import SimError, SimulatorKnobs, json_body, require_bearer

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _render(error: SimError) -> dict[str, str]:
    return {"code": error.code, "message": error.message}


require_key = require_bearer(401, "Invalid or missing API key / OIDC token", "AuthenticationError")


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `IcGpuState`."""
    state = IcGpuState(knobs or SimulatorKnobs())
    app = simulator_app("IC GPU simulator", state, _render)
    authorized = [Depends(require_key), Depends(state.record)]

    @app.get("/api/v1/gpu-tiers", dependencies=[Depends(state.record)])
    def gpu_tiers() -> dict[str, object]:
        return state.read_tiers()

    @app.post("/api/v1/instances", dependencies=authorized)
    async def create(
        request: Request, dry_run: bool = Query(False, alias="dryRun")
    ) -> JSONResponse:
        body = await json_body(request, "ValidationException")
        if dry_run:
            return JSONResponse(state.dry_run(body))
        key = request.headers.get(IDEMPOTENCY_HEADER)
        created, instance = state.create(body, key)
        if created:
            await asyncio.sleep(state.knobs.accept_delay_seconds)
        echoed = {IDEMPOTENCY_HEADER: key} if key is not None else {}
        return JSONResponse(instance, status_code=201, headers=echoed)

    @app.get("/api/v1/instances", dependencies=authorized)
    def list_instances(
        max_results: int | None = Query(None, alias="maxResults"),
        next_token: str | None = Query(None, alias="nextToken"),
    ) -> dict[str, object]:
        return state.list_page(max_results, next_token)

    actions = (
        ("GET", "", state.get),
        ("POST", "/stop", state.stop),
        ("POST", "/start", state.start),
        ("POST", "/requeue", state.requeue),
        ("DELETE", "", state.terminate),
    )
    for method, suffix, action in actions:
        _instance_route(app, method, suffix, action, authorized)

    return app


def _instance_route(
    app: FastAPI,
    method: str,
    suffix: str,
    action: Callable[[str], dict[str, object]],
    dependencies: Sequence[Any],
) -> None:
    """One endpoint on a single instance, `/api/v1/instances/{id}` and `suffix`."""

    def route(instance_id: str) -> dict[str, object]:
        return action(instance_id)

    path = "/api/v1/instances/{instance_id}" + suffix
    app.add_api_route(
        path, route, methods=[method], dependencies=dependencies, name=action.__name__
    )
