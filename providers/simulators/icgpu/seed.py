"""The IC GPU simulator's starting tiers: dedicated cards, MIG slices and time-sliced shares.

Everything random is drawn from one `random.Random(seed)`, so a seed always gives the same
catalog. Batch work costs half the interactive price, as IC GPU documents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# tier, GPU model as IC GPU spells it, memory (the slice's for MIG), interactive hourly price
# range in USD, regions, MIG profile where the tier is a slice.
TIERS: tuple[tuple[str, str, int, tuple[float, float], tuple[str, ...], str | None], ...] = (
    ("dedicated", "H100 80GB", 80, (1.80, 3.50), ("eu-west", "us-east"), None),
    ("dedicated", "H200 141GB", 141, (3.00, 4.50), ("us-east",), None),
    ("dedicated", "A100 80GB", 80, (1.10, 2.00), ("eu-west", "eu-central"), None),
    ("dedicated", "A100 40GB", 40, (0.90, 1.40), ("us-west",), None),
    ("dedicated", "L40S", 48, (0.70, 1.20), ("eu-central", "us-west"), None),
    ("dedicated", "RTX 4090", 24, (0.30, 0.80), ("eu-central", "ap-southeast"), None),
    ("dedicated", "L4", 24, (0.30, 0.60), ("eu-west", "ap-southeast"), None),
    ("mig", "A100 80GB", 10, (0.18, 0.32), ("eu-west",), "1g.10gb"),
    ("mig", "H100 80GB", 20, (0.55, 0.95), ("us-east", "eu-west"), "2g.20gb"),
    ("timesliced", "L4", 24, (0.10, 0.22), ("eu-west", "us-east"), None),
    ("timesliced", "A10", 24, (0.12, 0.25), ("eu-central",), None),
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
