"""A loopback EmpirioLabs: the documented catalog endpoints over real HTTP.

State lives in `EmpirioLabsState` so that rental endpoints can share it later. Each read of the
full catalog moves every price one step of the knobs' random walk and keeps the result.
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from providers.empiriolabs.seed import CatalogItem, seed_catalog
from providers.simkit import SimulatorKnobs, install_knobs


class EmpirioLabsState:
    """The simulated provider's catalog, plus what it has been asked (for tests and the demo)."""

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        self.items: dict[str, CatalogItem] = {item.slug: item for item in seed_catalog(knobs.seed)}
        self.requests: Counter[str] = Counter()
        self.last_authorization: str | None = None

    def record(self, request: Request) -> None:
        self.requests[request.url.path] += 1
        self.last_authorization = request.headers.get("authorization")

    def read_catalog(self) -> dict[str, object]:
        for item in self.items.values():
            item.price_hourly = self.knobs.drift(item.price_hourly)
        return {"object": "list", "data": [item.to_json() for item in self.items.values()]}


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `EmpirioLabsState`."""
    knobs = knobs or SimulatorKnobs()
    state = EmpirioLabsState(knobs)
    app = FastAPI(title="EmpirioLabs simulator")
    app.state.sim = state
    install_knobs(app, knobs)

    @app.get("/v1/gpu/catalog")
    async def catalog(request: Request) -> dict[str, object]:
        state.record(request)
        return state.read_catalog()

    @app.get("/v1/gpu/catalog/{gpu_slug}", response_model=None)
    async def catalog_item(gpu_slug: str, request: Request) -> dict[str, object] | JSONResponse:
        state.record(request)
        item = state.items.get(gpu_slug)
        if item is None:
            return _error(404, f"No GPU with slug '{gpu_slug}'.", "not_found")
        return item.to_json()

    return app
