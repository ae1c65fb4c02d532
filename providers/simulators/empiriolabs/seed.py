"""The EmpirioLabs simulator's starting catalog: realistic models, prices and regions.

Everything is drawn from one `random.Random(seed)`, so a seed always gives the same catalog.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# slug, display name, memory per GPU, per-GPU hourly price range in USD, largest GPU count.
GPU_MODELS: tuple[tuple[str, str, int, tuple[float, float], int], ...] = (
    ("rtx-3090", "RTX 3090", 24, (0.15, 0.35), 4),
    ("rtx-4090", "RTX 4090", 24, (0.30, 0.80), 8),
    ("rtx-5090", "RTX 5090", 32, (0.60, 1.10), 8),
    ("rtx-a6000", "RTX A6000", 48, (0.45, 0.80), 4),
    ("l4", "L4", 24, (0.35, 0.60), 8),
    ("l40s", "L40S", 48, (0.70, 1.20), 8),
    ("a100-40gb", "A100 40GB", 40, (0.90, 1.40), 8),
    ("a100-80gb", "A100 80GB", 80, (1.10, 2.00), 8),
    ("h100-pcie", "H100 PCIe", 80, (1.80, 2.60), 8),
    ("h100-sxm", "H100 SXM", 80, (2.20, 3.50), 8),
    ("h200", "H200", 141, (3.00, 4.50), 8),
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
        return {
            "slug": self.slug,
            "name": self.name,
            "vram_gb": self.vram_gb,
            "price_hourly": self.price_hourly,
            "available": self.available,
            "available_count": self.available_count,
            "max_gpus": self.max_gpus,
            "regions": list(self.regions),
        }


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
