"""The EmpirioLabs simulator's starting catalog: realistic models, prices and regions.

Everything is drawn from one `random.Random(seed)`, so a seed always gives the same catalog.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from providers.simulators.stock import seed_table, wire

GPU_MODELS: tuple[tuple[str, str, int, tuple[float, float], int], ...] = seed_table(
    __package__, "gpu_models"
)
REGIONS = ("US", "EU", "CA", "APAC")
UNAVAILABLE_MODELS = 2


@dataclass
class CatalogItem:
    """One GPU model as the catalog lists it; `price_hourly` walks as prices drift."""

    slug: str
    name: str
    vram_gb: int
    price_hourly: float
    available: bool
    available_count: int
    max_gpus: int
    regions: list[str]

    def to_json(self) -> dict[str, object]:
        return wire(self)


def seed_catalog(seed: int) -> list[CatalogItem]:
    """The catalog for `seed`: every model in one to three regions, a few sold out."""
    rng = random.Random(seed)
    sold_out = set(rng.sample(range(len(GPU_MODELS)), UNAVAILABLE_MODELS))
    items = []
    for index, (gpu_slug, name, vram_gb, (low, high), max_gpus) in enumerate(GPU_MODELS):
        available = index not in sold_out
        items.append(
            CatalogItem(
                slug=gpu_slug,
                name=name,
                vram_gb=vram_gb,
                price_hourly=round(rng.uniform(low, high), 2),
                available=available,
                available_count=rng.randint(1, 48) if available else 0,
                max_gpus=max_gpus,
                regions=sorted(rng.sample(REGIONS, rng.randint(1, 3)), key=REGIONS.index),
            )
        )
    return items
