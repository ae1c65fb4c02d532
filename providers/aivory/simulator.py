"""A loopback AIVory: the documented offer listing over real HTTP, behind a Bearer key.

Any key starting with `si_` is accepted, as AIVory's keys do; anything else is a 401. State lives
in `AivoryState` so that rental endpoints can share it later. Each read of the listing moves
every price one step of the knobs' random walk and keeps the result, then applies the filters.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from providers.aivory.seed import GpuOffer, seed_offers
from providers.simkit import SimulatorKnobs, install_knobs

KEY_PREFIX = "si_"
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _model_key(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


class AivoryState:
    """The simulated provider's offers, plus what it has been asked (for tests and the demo)."""

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        self.offers: list[GpuOffer] = seed_offers(knobs.seed)
        self.requests: Counter[str] = Counter()
        self.last_query: dict[str, str] = {}
        self._lock = threading.Lock()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests[request.url.path] += 1
            self.last_query = dict(request.query_params)

    def read_offers(
        self,
        gpu_model: str | None,
        provider: str | None,
        min_vram: float | None,
        max_price: float | None,
    ) -> list[dict[str, object]]:
        """Drift every price, then list the offers passing all the given filters."""
        with self._lock:
            for offer in self.offers:
                offer.price = self.knobs.drift(offer.price)
            return [
                offer.to_json()
                for offer in self.offers
                if (gpu_model is None or _model_key(gpu_model) in _model_key(offer.gpu_model))
                and (provider is None or provider.lower() == offer.provider_id)
                and (min_vram is None or offer.vram_gb >= min_vram)
                and (max_price is None or offer.price <= max_price)
            ]


def _authorized(request: Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and key.strip().startswith(KEY_PREFIX)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_simulator(knobs: SimulatorKnobs | None = None) -> FastAPI:
    """The simulator app; `app.state.sim` is its `AivoryState`."""
    knobs = knobs or SimulatorKnobs()
    state = AivoryState(knobs)
    app = FastAPI(title="AIVory simulator")
    app.state.sim = state
    install_knobs(app, knobs)

    @app.get("/v1/gpu/offers", response_model=None)
    def offers(
        request: Request,
        gpu_model: str | None = None,
        provider: str | None = None,
        min_vram: float | None = None,
        max_price: float | None = None,
    ) -> dict[str, object] | JSONResponse:
        state.record(request)
        if not _authorized(request):
            return _error(
                401, "unauthorized", "Missing or invalid API key: send Authorization: Bearer si_..."
            )
        data = state.read_offers(gpu_model, provider, min_vram, max_price)
        return {"object": "list", "count": len(data), "data": data}

    return app
