"""A loopback EmpirioLabs: the documented catalog and GPU instance endpoints over real HTTP.

State lives in `EmpirioLabsState`: the catalog, and the rentals (`InstanceBook`) that take GPUs
from it. Each read of the full catalog moves every price one step of the knobs' random walk and
keeps the result. Instance endpoints need `Authorization: Bearer <key>` (any non-empty key).
The connect proxy (`/v1/gpu/connect/{id}/...`) serves the shared workload (`..workload`) of a
running instance to the key that deployed it, and 401s any other.

Beyond the documented API, for tests and the demo, the kit's `/_sim` routes: an interruption is
always refused, as EmpirioLabs sells on-demand GPUs only.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers

from providers.simulators.book import AccountBook, simulator_app
from providers.simulators.empiriolabs.instances import InstanceBook, SimInstance
from providers.simulators.empiriolabs.seed import CatalogItem, seed_catalog
from providers.simulators.kit import (
    SimError,
    SimulatorKnobs,
    require_bearer,
)
from providers.simulators.workload import WorkloadState, bearer_key, create_workload_app

CONNECT_PATH = "/v1/gpu/connect/{instance_id}"


class EmpirioLabsState(AccountBook):
    """The simulated provider's catalog and rentals, plus what it has been asked."""

    COUNT_BY_METHOD = False

    def __init__(self, knobs: SimulatorKnobs) -> None:
        super().__init__(knobs)
        self.items: dict[str, CatalogItem] = {item.slug: item for item in seed_catalog(knobs.seed)}
        self.book = InstanceBook(knobs, self.items)
        self.last_deploy: dict[str, Any] | None = None
        self.owners: dict[str, str] = {}  # instance id -> the key that deployed it
        self.workload = WorkloadState("empiriolabs")

    def read_catalog(self) -> dict[str, object]:
        for item in self.items.values():
            item.price_hourly = self.knobs.drift(item.price_hourly)
        return {"object": "list", "data": [item.to_json() for item in self.items.values()]}

    def interrupt(self, instance_id: str) -> SimInstance:
        return self.book.interrupt(instance_id)

    def interrupt_json(self, instance_id: str, base_url: str = "") -> dict[str, Any]:
        return self.interrupt(instance_id).to_json()

    def instances_json(self, base_url: str = "") -> list[dict[str, Any]]:
        return [item.to_json() for item in self.book.all()]

    def connect_gate(self, instance_id: str | None, headers: Headers) -> Response | None:
        """The connect proxy's check: the deploying key, and an instance that is running."""
        key = bearer_key(headers)
        if key is None or instance_id is None or self.owners.get(instance_id) != key:
            return _error(401, "Missing or invalid API key.", "authentication_error")
        try:
            instance = self.book.get(instance_id)
        except SimError as refused:
            return _error(refused.status, refused.message, refused.code)
        if instance.phase != "running":
            return _error(409, f"Instance is {instance.phase}.", "conflict")
        return None


class DeployRequest(BaseModel):
    gpu_slug: str
    gpu_count: int = 1
    mode: Literal["model", "template", "custom"] = "template"
    hf_id: str | None = None
    template_slug: str | None = None
    image: str | None = None
    ports: list[int] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

    def workload(self) -> dict[str, Any]:
        """What the instance echoes back; `env` may hold tokens and is never echoed."""
        if self.mode == "model":
            if not self.hf_id:
                raise SimError(400, "mode model needs hf_id.", "invalid_request_error")
            return {"hf_id": self.hf_id}
        if self.mode == "custom":
            if not self.image:
                raise SimError(400, "mode custom needs image.", "invalid_request_error")
            return {"image": self.image, "ports": list(self.ports)}
        return {"template_slug": self.template_slug or "web-terminal"}


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


require_key = require_bearer(401, "Missing or invalid API key.", "authentication_error")


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `EmpirioLabsState`."""
    state = EmpirioLabsState(knobs or SimulatorKnobs())
    app = simulator_app(
        "EmpirioLabs simulator",
        state,
        lambda error: {"error": {"message": error.message, "type": error.code}},
        invalid=("Invalid request", "invalid_request_error"),
        workload=state.workload,
    )
    app.mount(CONNECT_PATH, create_workload_app(state.workload, state.connect_gate))
    authorized = [Depends(state.record), Depends(require_key)]

    @app.get("/v1/gpu/catalog", dependencies=[Depends(state.record)])
    async def catalog() -> dict[str, object]:
        return state.read_catalog()

    @app.get("/v1/gpu/catalog/{gpu_slug}", dependencies=[Depends(state.record)])
    async def catalog_item(gpu_slug: str) -> dict[str, object]:
        item = state.items.get(gpu_slug)
        if item is None:
            raise SimError(404, f"No GPU with slug '{gpu_slug}'.", "not_found")
        return item.to_json()

    @app.post("/v1/gpu/instances", status_code=201, dependencies=authorized)
    async def deploy(body: DeployRequest, request: Request) -> dict[str, Any]:
        state.last_deploy = body.model_dump()
        instance = state.book.deploy(body.gpu_slug, body.gpu_count, body.mode, body.workload())
        state.owners[instance.id] = bearer_key(request.headers) or ""
        # The instance exists from here on, whether or not the caller hears about it.
        await asyncio.sleep(state.knobs.accept_delay_seconds)
        return instance.to_json()

    @app.get("/v1/gpu/instances", dependencies=authorized)
    async def list_instances() -> dict[str, Any]:
        return {"object": "list", "data": [item.to_json() for item in state.book.all()]}

    @app.get("/v1/gpu/instances/{instance_id}", dependencies=authorized)
    async def get_instance(instance_id: str) -> dict[str, Any]:
        return state.book.get(instance_id).to_json()

    @app.post("/v1/gpu/instances/{instance_id}/{action}", dependencies=authorized)
    async def act(instance_id: str, action: str) -> dict[str, Any]:
        actions = {"stop": state.book.stop, "start": state.book.start, "refresh": state.book.get}
        if action not in actions:
            raise SimError(400, f"Unknown action '{action}'.", "invalid_request_error")
        return actions[action](instance_id).to_json()

    @app.delete("/v1/gpu/instances/{instance_id}", dependencies=authorized)
    async def destroy(instance_id: str) -> dict[str, Any]:
        return state.book.destroy(instance_id).to_json()

    return app
