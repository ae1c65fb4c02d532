"""A loopback Fluence GPU Cloud: the documented plan listings and instance endpoints over HTTP.

State lives in `FluenceState` (`state.py`). Each read of a plan listing moves that listing's
prices one step of the knobs' random walk and keeps the result. The plan listings are public; the
instance endpoints need `Authorization: Bearer <any non-empty key>`. Errors come in Fluence's
two formats: 422 `{"detail": [...]}` from request validation, `{"detail": "..."}` otherwise.

Each forwarded port of an ACTIVE container is served by the shared workload
(`..workload`) on a loopback port of its own, reported as its `external`;
`app.state.workload` is what they all share, and they stop with the simulator.

Beyond the documented API, for tests and the demo, the kit's `/_sim` routes: each instance shows
its `family`, and an interruption answers 409 (Fluence sells no spot capacity).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from providers.simulators.book import simulator_app
from providers.simulators.fluence.listeners import WorkloadListeners
from providers.simulators.fluence.seed import GpuKind, MachineOption
from providers.simulators.fluence.state import (
    MACHINE_FAMILIES,
    ContainerDeploy,
    FluenceState,
    MachineDeploy,
)
from providers.simulators.kit import (
    SimulatorKnobs,
    require_bearer,
)
from providers.simulators.workload import WorkloadState

# Any non-empty Bearer key; checked before the body is validated.
require_key = require_bearer(401, "Not authenticated")


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

    app = simulator_app(
        "Fluence GPU Cloud simulator",
        state,
        lambda error: {"detail": error.message},
        workload=workload,
        lifespan=lifespan,
    )

    authorized = [Depends(require_key), Depends(state.record)]

    @app.get("/gpu/plans/", dependencies=[Depends(state.record)])
    def container_plans() -> list[dict[str, object]]:
        return state.read_container_plans()

    for family in MACHINE_FAMILIES:
        _machine_routes(app, state, family)

    @app.post("/gpu/instances/", status_code=201, dependencies=authorized)
    async def deploy_container(body: ContainerDeploy) -> dict[str, object]:
        created = state.deploy_container(body)
        await asyncio.sleep(knobs.accept_delay_seconds)
        return created

    @app.get("/gpu/instances/", dependencies=authorized)
    def list_containers() -> list[dict[str, object]]:
        return state.list("container")

    @app.get("/gpu/instances/{instance_id}", dependencies=authorized)
    def get_container(instance_id: str) -> dict[str, object]:
        return state.get("container", instance_id)

    @app.delete("/gpu/instances/{instance_id}", dependencies=authorized)
    def terminate_container(instance_id: str) -> dict[str, object]:
        return state.terminate("container", instance_id)

    return app


def _machine_routes(app: FastAPI, state: FluenceState, family: str) -> None:
    """The plan listing and instance endpoints of one machine family (`vms` or `baremetal`).

    Registered before the container routes, so `/gpu/instances/vms` is never read as a
    container id.
    """
    knobs = state.knobs
    base = f"/gpu/instances/{family}"
    authorized = [Depends(require_key), Depends(state.record)]

    @app.get(f"/gpu/plans/{family}", dependencies=[Depends(state.record)], name=f"{family}_plans")
    def plans() -> list[dict[str, object]]:
        return _grouped(state.read_machine_options(family))

    @app.post(base, status_code=201, dependencies=authorized, name=f"deploy_{family}")
    async def deploy(body: MachineDeploy) -> dict[str, object]:
        created = state.deploy_machine(family, body)
        await asyncio.sleep(knobs.accept_delay_seconds)
        return created

    @app.get(base, dependencies=authorized, name=f"list_{family}")
    def listing() -> list[dict[str, object]]:
        return state.list(family)

    @app.get(f"{base}/{{instance_id}}", dependencies=authorized, name=f"get_{family}")
    def get(instance_id: str) -> dict[str, object]:
        return state.get(family, instance_id)

    @app.delete(f"{base}/{{instance_id}}", dependencies=authorized, name=f"terminate_{family}")
    def terminate(instance_id: str) -> dict[str, object]:
        return state.terminate(family, instance_id)
