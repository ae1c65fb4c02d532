"""The AIVory simulator's starting catalog: upstream providers, regions, GPUs and spot prices.

Everything random is drawn from one `random.Random(seed)`, so a seed always gives the same
catalog. Each GPU model is listed by several upstream providers in several regions, mostly as
spot offers priced below the on-demand range, with an on-demand twin for some of them. Capacity
is finite: an offer holds a few rentals at a time and is listed unavailable while none is free.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from providers.simulators.stock import Stocked, seed_table, wire

GPU_MODELS: tuple[tuple[str, int, tuple[float, float]], ...] = seed_table(__package__, "gpu_models")
UPSTREAMS: tuple[tuple[str, tuple[str, ...]], ...] = seed_table(__package__, "upstreams")
# The documented example offer is always listed: vast-ai's RTX 4090 in Quebec.
EXAMPLE = ("RTX 4090", "vast-ai", "Quebec, CA")
LISTINGS_PER_MODEL = 4
SPOT_DISCOUNT = (0.45, 0.75)
# Every this-many-th offer is listed as momentarily unavailable.
UNAVAILABLE_EVERY = 9
# Rentals an offer can hold at once.
OFFER_CAPACITY = 2


@dataclass
class GpuOffer(Stocked):
    """One listed offer; `price` walks as prices drift; `free` is how many more rentals it holds."""

    gpu_model: str
    vram_gb: int
    provider_id: str
    region: str
    price: float
    interruption_probability: float
    spot: bool
    free: int = OFFER_CAPACITY

    def to_json(self) -> dict[str, object]:
        return wire(
            self,
            leave=("price", "free"),
            price_per_gpu_hour=f"{self.price:.4f}",
            available=self.available,
        )


def seed_offers(seed: int) -> list[GpuOffer]:
    """The catalog for `seed`: each model at several upstreams, on-demand twins for the first."""
    rng = random.Random(seed)
    placements = [(upstream, region) for upstream, regions in UPSTREAMS for region in regions]
    offers: list[GpuOffer] = []
    for gpu_model, vram_gb, (low, high) in GPU_MODELS:
        chosen = rng.sample(placements, LISTINGS_PER_MODEL)
        if gpu_model == EXAMPLE[0] and EXAMPLE[1:] not in chosen:
            chosen[0] = EXAMPLE[1:]
        for position, (upstream, region) in enumerate(chosen):
            on_demand = round(rng.uniform(low, high), 3)
            spot = GpuOffer(
                gpu_model=gpu_model,
                vram_gb=vram_gb,
                provider_id=upstream,
                region=region,
                price=round(on_demand * rng.uniform(*SPOT_DISCOUNT), 3),
                interruption_probability=round(rng.uniform(0.01, 0.15), 3),
                spot=True,
            )
            offers.append(spot)
            if position == 0:
                offers.append(
                    replace(spot, price=on_demand, interruption_probability=0.0, spot=False)
                )
    for index in range(UNAVAILABLE_EVERY - 1, len(offers), UNAVAILABLE_EVERY):
        offers[index].free = 0
    return offers
