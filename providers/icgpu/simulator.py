"""A loopback IC GPU: the public tier listing and the instance endpoints over real HTTP.

State lives in `IcGpuState` (`sim_state.py`). Each read of the listing moves every tier's
interactive price one step of the knobs' random walk and keeps the result; the batch price
follows it. The instance endpoints need `Authorization: Bearer <any non-empty key>`. Errors are
IC GPU's `{"code", "message"}`; a create echoes its `Idempotency-Key`.

Beyond the documented API, for tests and the demo: `GET /_sim/instances` lists every instance with
its status, and `POST /_sim/instances/{id}/interrupt` preempts a batch instance.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from providers.icgpu.sim_state import IcGpuState, SimError
from providers.simkit import SimulatorKnobs, install_knobs

__all__ = ["IcGpuState", "create_simulator"]

IDEMPOTENCY_HEADER = "Idempotency-Key"


def require_key(request: Request) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise SimError(401, "AuthenticationError", "Invalid or missing API key / OIDC token")


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `IcGpuState`."""
    knobs = knobs or SimulatorKnobs()
    state = IcGpuState(knobs)
    app = FastAPI(title="IC GPU simulator")
    app.state.sim = state
    install_knobs(app, knobs)
    authorized = [Depends(require_key)]

    @app.exception_handler(SimError)
    async def refused(request: Request, exc: SimError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

    @app.get("/api/v1/gpu-tiers")
    def gpu_tiers(request: Request) -> dict[str, object]:
        state.record(request)
        return state.read_tiers()

    @app.post("/api/v1/instances", dependencies=authorized)
    async def create(
        request: Request, dry_run: bool = Query(False, alias="dryRun")
    ) -> JSONResponse:
        state.record(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SimError(400, "ValidationException", "The body is not JSON") from None
        if dry_run:
            return JSONResponse(state.dry_run(body))
        key = request.headers.get(IDEMPOTENCY_HEADER)
        created, instance = state.create(body, key)
        if created:
            await asyncio.sleep(knobs.accept_delay_seconds)
        echoed = {IDEMPOTENCY_HEADER: key} if key is not None else {}
        return JSONResponse(instance, status_code=201, headers=echoed)

    @app.get("/api/v1/instances", dependencies=authorized)
    def list_instances(
        request: Request,
        max_results: int | None = Query(None, alias="maxResults"),
        next_token: str | None = Query(None, alias="nextToken"),
    ) -> dict[str, object]:
        state.record(request)
        return state.list_page(max_results, next_token)

    @app.get("/api/v1/instances/{instance_id}", dependencies=authorized)
    def get(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.get(instance_id)

    @app.post("/api/v1/instances/{instance_id}/stop", dependencies=authorized)
    def stop(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.stop(instance_id)

    @app.post("/api/v1/instances/{instance_id}/start", dependencies=authorized)
    def start(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.start(instance_id)

    @app.post("/api/v1/instances/{instance_id}/requeue", dependencies=authorized)
    def requeue(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.requeue(instance_id)

    @app.delete("/api/v1/instances/{instance_id}", dependencies=authorized)
    def terminate(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.terminate(instance_id)

    @app.get("/_sim/instances")
    def all_instances() -> dict[str, object]:
        return {"instances": state.all_instances()}

    @app.post("/_sim/instances/{instance_id}/interrupt")
    def interrupt(instance_id: str) -> dict[str, object]:
        return state.interrupt(instance_id)

    return app
