"""A loopback ComputeGPU: marketplace search and rentals, GPU cloud types and pods, over HTTP.

Search honours the documented filters server-side and caps a page at `MAX_PAGE_SIZE` listings
whatever `limit` asks, as real APIs cap pages, so clients must follow `total`. A read of the
catalog (a search from offset 0, or the type list) moves prices one step of the knobs' random
walk; the pages after the first see the same prices, so paging stays consistent.

Rental and pod endpoints need `Authorization: Bearer <key>` (any non-empty key); their state is
`rentals.RentalBook`. The per-rental Ollama proxy (`/api/v1/ollama/{id}/...`) serves the
shared workload (`..workload`) of an active rental or running Ollama pod to that
rental's own key, and 401s any other (the account key included). As the document says, a
marketplace rental's key and endpoint appear in the rent response only: the rental detail, the
list and the stop response never repeat them, so a client that loses them cannot reach the
workload (pods, whose detail does carry them, are another matter).

Beyond the documented API, for tests and the demo, the kit's `/_sim` routes: the instances are
the marketplace rentals (`family: listing`) and the pods (`family: pod`), and an interruption
preempts a spot pod or has a spot listing's host take its machine back.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import Headers

from providers.simulators.book import AccountBook, simulator_app
from providers.simulators.computegpu.rentals import OLLAMA_PROXY, RentalBook, SimPod, SimRental
from providers.simulators.computegpu.seed import (
    GpuType,
    Listing,
    seed_gpu_types,
    seed_listings,
)
from providers.simulators.kit import (
    SimulatorKnobs,
    require_bearer,
)
from providers.simulators.workload import WorkloadState, bearer_key, create_workload_app

MAX_PAGE_SIZE = 20
DEFAULT_PAGE_SIZE = 100
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _squash(name: str) -> str:
    """Lower-case letters and digits only, so `gpu=RTX4090` finds "NVIDIA GeForce RTX 4090"."""
    return _NOT_ALNUM.sub("", name.lower())


class SearchQuery(BaseModel):
    """The marketplace search's query string (camelCase names, as ComputeGPU spells them)."""

    gpu: str | None = None
    max_price: float | None = Field(None, alias="maxPrice")
    min_vram: float | None = Field(None, alias="minVram")
    ollama_model: str | None = Field(None, alias="ollamaModel")
    instance_type: str | None = Field(None, alias="instanceType")
    pricing_tier: str | None = Field(None, alias="pricingTier")
    sort: str | None = None
    limit: int = DEFAULT_PAGE_SIZE
    offset: int = 0

    def matches(self, listing: Listing) -> bool:
        return (
            (self.gpu is None or _squash(self.gpu) in _squash(listing.gpu_model))
            and (self.max_price is None or listing.price_per_hour <= self.max_price)
            and (self.min_vram is None or listing.vram_gb >= self.min_vram)
            and (self.ollama_model is None or self.ollama_model in listing.ollama_models)
            and (self.instance_type is None or listing.instance_type == self.instance_type)
            and (self.pricing_tier is None or listing.pricing_tier == self.pricing_tier)
        )


class ComputeGpuState(AccountBook):
    """The simulated provider's listings and cloud types, plus what it has been asked."""

    COUNT_BY_METHOD = False

    def __init__(self, knobs: SimulatorKnobs) -> None:
        super().__init__(knobs)
        self.listings: list[Listing] = seed_listings(knobs.seed)
        self.gpu_types: list[GpuType] = seed_gpu_types(knobs.seed)
        self.book = RentalBook(knobs, self.listings, self.gpu_types)
        self.last_deploy: dict[str, Any] | None = None
        self.last_query: dict[str, dict[str, str]] = {}
        self.workload = WorkloadState("computegpu")

    def record(self, request: Request) -> None:
        """Count the request; keep the latest query string of each path."""
        super().record(request)
        self.last_query[request.url.path] = dict(request.query_params)

    def search(self, query: SearchQuery) -> dict[str, object]:
        if query.offset == 0:
            for listing in self.listings:
                listing.price_per_hour = self.knobs.drift(listing.price_per_hour)
        matches = [listing for listing in self.listings if query.matches(listing)]
        if query.sort == "price":
            matches.sort(key=lambda listing: listing.price_per_hour)
        limit = max(1, min(query.limit, MAX_PAGE_SIZE))
        offset = max(0, query.offset)
        return {
            "listings": [listing.to_json() for listing in matches[offset : offset + limit]],
            "total": len(matches),
            "limit": limit,
            "offset": offset,
        }

    def read_gpu_types(self) -> dict[str, object]:
        for gpu_type in self.gpu_types:
            gpu_type.price_per_hour = self.knobs.drift(gpu_type.price_per_hour)
            if gpu_type.spot_price_per_hour is not None:
                gpu_type.spot_price_per_hour = self.knobs.drift(gpu_type.spot_price_per_hour)
        return {"types": [gpu_type.to_json() for gpu_type in self.gpu_types]}

    def interrupt(self, instance_id: str) -> SimPod | SimRental:
        return self.book.interrupt(instance_id)

    def instances_json(self, base_url: str = "") -> list[dict[str, Any]]:
        """Every rental and pod as the API shows it, each with its `family`."""
        listed = [{"family": "listing", **r.to_json()} for r in self.book.rentals.values()]
        return listed + [
            {"family": "pod", **p.to_json(with_key=False)} for p in self.book.every_pod()
        ]

    def interrupt_json(self, instance_id: str, base_url: str = "") -> dict[str, Any]:
        """Interrupt the instance and show it as the API does, without its key."""
        interrupted = self.interrupt(instance_id)
        if isinstance(interrupted, SimRental):
            return interrupted.to_json()
        return interrupted.to_json(with_key=False)

    def ollama_gate(self, instance_id: str | None, headers: Headers) -> Response | None:
        """The Ollama proxy's check: the rental's own key, while it is active or running."""
        found = self._reachable(instance_id or "")
        if found is None:
            return JSONResponse({"error": "Rental not found."}, status_code=404)
        expected, status = found
        key = bearer_key(headers)
        if key is None or not hmac.compare_digest(key.encode(), expected.encode()):
            return JSONResponse({"error": "Unauthorized: invalid rental key."}, status_code=401)
        if status not in ("active", "running"):
            return JSONResponse({"error": f"Rental is {status}."}, status_code=409)
        return None

    def _reachable(self, instance_id: str) -> tuple[str, str] | None:
        """The per-rental key and status of a marketplace rental or a pod, settled."""
        rental = self.book.rentals.get(instance_id)
        if rental is not None:
            return rental.api_key, rental.status
        if instance_id in self.book.pods:
            pod = self.book.pod(instance_id)
            return pod.api_key, pod.phase
        return None


class DeployRequest(BaseModel):
    gpuType: str
    gpuCount: int = 1
    models: list[str] = Field(default_factory=list)
    instanceType: Literal["ollama", "docker", "ssh"] = "ollama"
    volumeGb: int = 50
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    sshKey: str | None = None
    bidPerGpu: float | None = None


require_key = require_bearer(401, "Unauthorized: missing or invalid API key.")


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `ComputeGpuState`."""
    state = ComputeGpuState(knobs or SimulatorKnobs())
    app = simulator_app(
        "ComputeGPU simulator",
        state,
        lambda error: {"error": error.message},
        invalid=("Invalid parameters", ""),
        workload=state.workload,
    )
    workload = create_workload_app(state.workload, state.ollama_gate)
    app.mount(f"{OLLAMA_PROXY}/{{instance_id}}", workload)

    @app.get("/api/v1/marketplace/search", dependencies=[Depends(state.record)])
    async def search(query: Annotated[SearchQuery, Query()]) -> dict[str, object]:
        return state.search(query)

    @app.get("/api/v1/gpu/types", dependencies=[Depends(state.record)])
    async def gpu_types() -> dict[str, object]:
        return state.read_gpu_types()

    install_rental_routes(app, state)
    return app


def install_rental_routes(app: FastAPI, state: ComputeGpuState) -> None:
    """The authenticated marketplace rental and GPU cloud pod endpoints."""
    book = state.book
    authorized = [Depends(state.record), Depends(require_key)]

    @app.post("/api/v1/marketplace/rent/{listing_id}", dependencies=authorized)
    async def rent(listing_id: str) -> dict[str, Any]:
        rental = book.rent(listing_id)
        # The rental exists from here on, whether or not the caller hears about it.
        await asyncio.sleep(state.knobs.accept_delay_seconds)
        return {
            "rentalId": rental.id,
            "apiKey": rental.api_key,
            "endpoint": rental.endpoint,
            "status": rental.status,
            "pricePerHour": rental.price_per_hour,
        }

    @app.get("/api/v1/marketplace/rentals", dependencies=authorized)
    async def rentals(status: str | None = None) -> dict[str, Any]:
        chosen = [r for r in book.rentals.values() if status is None or r.status == status]
        return {"rentals": [rental.to_json() for rental in chosen]}

    @app.get("/api/v1/marketplace/rentals/{rental_id}", dependencies=authorized)
    async def rental(rental_id: str) -> dict[str, Any]:
        return {"rental": book.rental(rental_id).to_json()}

    @app.post("/api/v1/marketplace/rentals/{rental_id}/stop", dependencies=authorized)
    async def stop_rental(rental_id: str) -> dict[str, Any]:
        stopped = book.stop_rental(rental_id)
        seconds = stopped.meter.seconds()
        return {
            "rental": stopped.to_json(),
            "cost": {"total": stopped.cost(), "seconds": round(seconds)},
        }

    async def deploy(body: DeployRequest, *, spot: bool) -> dict[str, Any]:
        state.last_deploy = body.model_dump(exclude={"env", "sshKey"})
        pod = book.deploy(body.model_dump(), body.bidPerGpu, spot=spot)
        await asyncio.sleep(state.knobs.accept_delay_seconds)
        return {"instance": pod.to_json()}

    @app.post("/api/v1/gpu/deploy", dependencies=authorized)
    async def deploy_on_demand(body: DeployRequest) -> dict[str, Any]:
        return await deploy(body, spot=False)

    @app.post("/api/v1/gpu/deploy-spot", dependencies=authorized)
    async def deploy_spot(body: DeployRequest) -> dict[str, Any]:
        return await deploy(body, spot=True)

    @app.get("/api/v1/gpu/pods", dependencies=authorized)
    async def pods() -> dict[str, Any]:
        return {"instances": [pod.to_json(with_key=False) for pod in book.live_pods()]}

    @app.get("/api/v1/gpu/pods/{pod_id}", dependencies=authorized)
    async def pod(pod_id: str) -> dict[str, Any]:
        return {"instance": book.pod(pod_id).to_json()}

    @app.put("/api/v1/gpu/pods/{pod_id}/{action}", response_model=None, dependencies=authorized)
    async def pod_action(
        pod_id: str,
        action: str,
    ) -> dict[str, Any] | JSONResponse:
        actions = {"stop": book.pause, "resume": book.resume}
        if action not in actions:
            return JSONResponse({"error": f"Unknown action: {action}."}, status_code=404)
        return {"instance": actions[action](pod_id).to_json()}

    @app.delete("/api/v1/gpu/pods/{pod_id}", dependencies=authorized)
    async def destroy(pod_id: str) -> dict[str, Any]:
        destroyed = book.destroy(pod_id)
        return {"instance": destroyed.to_json(), "finalCost": destroyed.cost()}
