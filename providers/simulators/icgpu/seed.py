"""The IC GPU simulator's starting tiers: dedicated cards, MIG slices and time-sliced shares.

Everything random is drawn from one `random.Random(seed)`, so a seed always gives the same
catalog. Batch work costs half the interactive price, as IC GPU documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from providers.simulators.stock import seed_table

TIERS: tuple[tuple[str, str, int, tuple[float, float], tuple[str, ...], str | None], ...] = (
    seed_table(__package__, "tiers")
)
SHARED_TIER = "timesliced"
SOLD_OUT_TIERS = 2
BATCH_DISCOUNT = 0.5


@dataclass
class GpuTier:
    """One listed tier; `price` (interactive) walks as prices drift, batch follows at half."""

    tier: str
    gpu_model: str
    vram_gb: int
    price: float
    available: int
    regions: tuple[str, ...]
    mig_profile: str | None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "tier": self.tier,
            "gpu_model": self.gpu_model,
            "vram_gb": self.vram_gb,
            "price_per_hour": f"{self.price:.4f}",
            "batch_price_per_hour": f"{self.price * BATCH_DISCOUNT:.4f}",
            "available": self.available,
            "regions": list(self.regions),
        }
        if self.tier == SHARED_TIER:
            body["shared"] = True
        if self.mig_profile is not None:
            body["mig_profile"] = self.mig_profile
        return body


def seed_tiers(seed: int) -> list[GpuTier]:
    """The tiers for `seed`: drawn prices and free-GPU counts, a few tiers sold out."""
    rng = random.Random(seed)
    sold_out = set(rng.sample(range(len(TIERS)), SOLD_OUT_TIERS))
    return [
        GpuTier(
            tier=tier,
            gpu_model=gpu_model,
            vram_gb=vram_gb,
            price=round(rng.uniform(low, high), 2),
            available=0 if index in sold_out else rng.randint(1, 8),
            regions=regions,
            mig_profile=mig_profile,
        )
        for index, (tier, gpu_model, vram_gb, (low, high), regions, mig_profile) in enumerate(TIERS)
    ]
