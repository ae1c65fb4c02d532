"""A loopback Fluence GPU Cloud: the documented plan listings over real HTTP.

State lives in `FluenceState` so that instance endpoints can share it later. Each read of a plan
listing moves that listing's prices one step of the knobs' random walk and keeps the result.
"""

from __future__ import annotations

import threading
from collections import Counter

from fastapi import FastAPI, Request

from providers.fluence.seed import GpuKind, MachineOption, seed_catalog
from providers.simkit import SimulatorKnobs, install_knobs


class FluenceState:
    """The simulated provider's plans, plus what it has been asked (for tests and the demo)."""

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        catalog = seed_catalog(knobs.seed)
        self.plans = catalog.plans
        self.machine_options = {"vms": catalog.vms, "baremetal": catalog.baremetal}
        self.requests: Counter[str] = Counter()
        self.last_authorization: str | None = None
        self._lock = threading.Lock()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests[request.url.path] += 1
            self.last_authorization = request.headers.get("authorization")

    def read_container_plans(self) -> list[dict[str, object]]:
        with self._lock:
            for plan in self.plans:
                plan.price = self.knobs.drift(plan.price)
            return [plan.to_json() for plan in self.plans]

    def read_machine_plans(self, family: str) -> list[dict[str, object]]:
        """VM or bare-metal options, grouped by GPU model and then by GPU count."""
        with self._lock:
            options = self.machine_options[family]
            for option in options:
                option.price = self.knobs.drift(option.price)
            return _grouped(options)


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
    state = FluenceState(knobs)
    app = FastAPI(title="Fluence GPU Cloud simulator")
    app.state.sim = state
    install_knobs(app, knobs)

    @app.get("/gpu/plans/")
    def container_plans(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return state.read_container_plans()

    @app.get("/gpu/plans/vms")
    def vm_plans(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return state.read_machine_plans("vms")

    @app.get("/gpu/plans/baremetal")
    def baremetal_plans(request: Request) -> list[dict[str, object]]:
        state.record(request)
        return state.read_machine_plans("baremetal")

    return app
