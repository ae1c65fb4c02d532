"""A loopback ComputeGPU: marketplace search and GPU cloud types over real HTTP.

Search honours the documented filters server-side and caps a page at `MAX_PAGE_SIZE` listings
whatever `limit` asks, as real APIs cap pages, so clients must follow `total`. A read of the
catalog (a search from offset 0, or the type list) moves prices one step of the knobs' random
walk; the pages after the first see the same prices, so paging stays consistent.
"""

from __future__ import annotations

import re
from collections import Counter

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from providers.computegpu.seed import GpuType, Listing, seed_gpu_types, seed_listings
from providers.simkit import SimulatorKnobs, install_knobs

MAX_PAGE_SIZE = 20
DEFAULT_PAGE_SIZE = 100
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _squash(name: str) -> str:
    """Lower-case letters and digits only, so `gpu=RTX4090` finds "NVIDIA GeForce RTX 4090"."""
    return _NOT_ALNUM.sub("", name.lower())


class ComputeGpuState:
    """The simulated provider's listings and cloud types, plus what it has been asked."""

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        self.listings: list[Listing] = seed_listings(knobs.seed)
        self.gpu_types: list[GpuType] = seed_gpu_types(knobs.seed)
        self.requests: Counter[str] = Counter()
        self.last_query: dict[str, dict[str, str]] = {}
        self.last_authorization: str | None = None

    def record(self, request: Request) -> None:
        self.requests[request.url.path] += 1
        self.last_query[request.url.path] = dict(request.query_params)
        self.last_authorization = request.headers.get("authorization")

    def search(
        self,
        *,
        gpu: str | None = None,
        max_price: float | None = None,
        min_vram: float | None = None,
        ollama_model: str | None = None,
        instance_type: str | None = None,
        pricing_tier: str | None = None,
        sort: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> dict[str, object]:
        if offset == 0:
            for listing in self.listings:
                listing.price_per_hour = self.knobs.drift(listing.price_per_hour)
        matches = [
            listing
            for listing in self.listings
            if (gpu is None or _squash(gpu) in _squash(listing.gpu_model))
            and (max_price is None or listing.price_per_hour <= max_price)
            and (min_vram is None or listing.vram_gb >= min_vram)
            and (ollama_model is None or ollama_model in listing.ollama_models)
            and (instance_type is None or listing.instance_type == instance_type)
            and (pricing_tier is None or listing.pricing_tier == pricing_tier)
        ]
        if sort == "price":
            matches.sort(key=lambda listing: listing.price_per_hour)
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        offset = max(0, offset)
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


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `ComputeGpuState`."""
    knobs = knobs or SimulatorKnobs()
    state = ComputeGpuState(knobs)
    app = FastAPI(title="ComputeGPU simulator")
    app.state.sim = state
    install_knobs(app, knobs)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = ", ".join(str(error["loc"][-1]) for error in exc.errors())
        return JSONResponse({"error": f"Invalid parameters: {fields}"}, status_code=400)

    @app.get("/api/v1/marketplace/search")
    async def search(
        request: Request,
        gpu: str | None = None,
        maxPrice: float | None = None,
        minVram: float | None = None,
        ollamaModel: str | None = None,
        instanceType: str | None = None,
        pricingTier: str | None = None,
        sort: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> dict[str, object]:
        state.record(request)
        return state.search(
            gpu=gpu,
            max_price=maxPrice,
            min_vram=minVram,
            ollama_model=ollamaModel,
            instance_type=instanceType,
            pricing_tier=pricingTier,
            sort=sort,
            limit=limit,
            offset=offset,
        )

    @app.get("/api/v1/gpu/types")
    async def gpu_types(request: Request) -> dict[str, object]:
        state.record(request)
        return state.read_gpu_types()

    return app
