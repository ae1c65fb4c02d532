"""A loopback IC GPU: the documented public tier listing over real HTTP.

State lives in `IcGpuState` so that instance endpoints can share it later. Each read of the
listing moves every tier's interactive price one step of the knobs' random walk and keeps the
result; the batch price follows it.
"""

from __future__ import annotations

import threading
from collections import Counter

from fastapi import FastAPI, Request

from providers.icgpu.seed import GpuTier, seed_tiers
from providers.simkit import SimulatorKnobs, install_knobs


class IcGpuState:
    """The simulated provider's tiers, plus what it has been asked (for tests and the demo)."""

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        self.tiers: list[GpuTier] = seed_tiers(knobs.seed)
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests[request.url.path] += 1

    def read_tiers(self) -> dict[str, object]:
        with self._lock:
            for tier in self.tiers:
                tier.price = self.knobs.drift(tier.price)
            return {"tiers": [tier.to_json() for tier in self.tiers]}


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `IcGpuState`."""
    knobs = knobs or SimulatorKnobs()
    state = IcGpuState(knobs)
    app = FastAPI(title="IC GPU simulator")
    app.state.sim = state
    install_knobs(app, knobs)

    @app.get("/api/v1/gpu-tiers")
    def gpu_tiers(request: Request) -> dict[str, object]:
        state.record(request)
        return state.read_tiers()

    return app
