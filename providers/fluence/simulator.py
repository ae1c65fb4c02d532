"""A loopback Fluence GPU Cloud: the documented plan listings and instance endpoints over HTTP.

State lives in `FluenceState` (`sim_state.py`). Each read of a plan listing moves that listing's
prices one step of the knobs' random walk and keeps the result. The plan listings are public; the
instance endpoints need `Authorization: Bearer <any non-empty key>`. Errors come in Fluence's
two formats: 422 `{"detail": [...]}` from request validation, `{"detail": "..."}` otherwise.

Each forwarded port of an ACTIVE container is served by the shared workload
(`providers.workload_sim`) on a loopback port of its own, reported as its `external`;
`app.state.workload` is what they all share, and they stop with the simulator.

Beyond the documented API, for tests and the demo: `GET /_sim/instances` lists every instance with
its family and status, and `POST /_sim/instances/{id}/interrupt` answers 409 (Fluence sells no
spot capacity).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from providers.fluence.seed import GpuKind, MachineOption
from providers.fluence.sim_state import (
    MACHINE_FAMILIES,
    ContainerDeploy,
    FluenceState,
    MachineDeploy,
    SimRefusal,
)
from providers.fluence.sim_workload import WorkloadListeners
from providers.simkit import SimulatorKnobs, install_knobs
from providers.workload_sim import WorkloadState

__all__ = ["FluenceState", "create_simulator"]


def require_key(request: Request) -> None:
    """Any non-empty Bearer key; checked before the body is validated."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "Not authenticated")


def _grouped(options: list[MachineOption]) -> list[dict[str, object]]:
    groups: dict[GpuKind, dict[int, list[dict[str, object]]]] = {}
    for option in options:
        by_count = groups.setdefault(option.gpu, {})
        by_count.setdefault(option.gpu_count, []).append(option.to_json())
    return [
        {
            "gpu_model": gpu.model,
            "memory_gb": gpu.memory_gb,
            "by_count": [
                {"gpu_count": count, "options": listed} for count, listed in by_count.items()
            ],
        }
        for gpu, by_count in groups.items()
    ]


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `FluenceState`."""
    knobs = knobs or SimulatorKnobs()
    workload = WorkloadState("fluence")
    listeners = WorkloadListeners(workload)
    state = FluenceState(knobs, listeners)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(listeners.close_all)

    app = FastAPI(title="Fluence GPU Cloud simulator", lifespan=lifespan)
    app.state.sim = state
    app.state.workload = workload
    install_knobs(app, knobs)

    @app.exception_handler(SimRefusal)
    async def refused(request: Request, exc: SimRefusal) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.get("/gpu/plans/")
    def container_plans(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return state.read_container_plans()

    for family in MACHINE_FAMILIES:
        _machine_routes(app, state, family)

    @app.post("/gpu/instances/", status_code=201, dependencies=[Depends(require_key)])
    async def deploy_container(body: ContainerDeploy, request: Request) -> dict[str, object]:
        state.record(request)
        created = state.deploy_container(body)
        await asyncio.sleep(knobs.accept_delay_seconds)
        return created

    @app.get("/gpu/instances/", dependencies=[Depends(require_key)])
    def list_containers(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return state.list("container")

    @app.get("/gpu/instances/{instance_id}", dependencies=[Depends(require_key)])
    def get_container(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.get("container", instance_id)

    @app.delete("/gpu/instances/{instance_id}", dependencies=[Depends(require_key)])
    def terminate_container(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.terminate("container", instance_id)

    @app.get("/_sim/instances")
    def all_instances() -> dict[str, object]:
        return {"instances": state.all_instances()}

    @app.post("/_sim/instances/{instance_id}/interrupt")
    def interrupt(instance_id: str) -> dict[str, object]:
        state.interrupt(instance_id)
        return {"ok": True}

    return app


def _machine_routes(app: FastAPI, state: FluenceState, family: str) -> None:
    """The plan listing and instance endpoints of one machine family (`vms` or `baremetal`).

    Registered before the container routes, so `/gpu/instances/vms` is never read as a
    container id.
    """
    knobs = state.knobs
    base = f"/gpu/instances/{family}"
    authorized = [Depends(require_key)]

    @app.get(f"/gpu/plans/{family}", name=f"{family}_plans")
    def plans(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return _grouped(state.read_machine_options(family))

    @app.post(base, status_code=201, dependencies=authorized, name=f"deploy_{family}")
    async def deploy(body: MachineDeploy, request: Request) -> dict[str, object]:
        state.record(request)
        created = state.deploy_machine(family, body)
        await asyncio.sleep(knobs.accept_delay_seconds)
        return created

    @app.get(base, dependencies=authorized, name=f"list_{family}")
    def listing(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return state.list(family)

    @app.get(f"{base}/{{instance_id}}", dependencies=authorized, name=f"get_{family}")
    def get(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.get(family, instance_id)

    @app.delete(f"{base}/{{instance_id}}", dependencies=authorized, name=f"terminate_{family}")
    def terminate(instance_id: str, request: Request) -> dict[str, object]:
        state.record(request)
        return state.terminate(family, instance_id)
