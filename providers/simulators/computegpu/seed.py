"""The ComputeGPU simulator's starting state: marketplace listings and GPU cloud types.

Hosts register their GPUs under many spellings (`RTX 4090`, `RTX4090`, `NVIDIA GeForce RTX
4090`), as on the real marketplace. Everything is drawn from one `random.Random(seed)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from providers.simulators.stock import camel, seed_table, wire

LISTING_MODELS: tuple[tuple[str, int, tuple[float, float]], ...] = seed_table(
    __package__, "listing_models"
)
LOCATIONS = ("DE", "US", "FR", "NL", "GB", "CA", "SG", "PL")
GPU_COUNT_CHOICES = (1, 1, 1, 1, 2, 2, 4, 8)
INSTANCE_TYPES = ("ollama", "ollama", "docker", "ssh")
OLLAMA_MODELS = ("llama3", "llama3.3", "qwen2.5", "gemma3", "mistral", "deepseek-r1")
LISTING_COUNT = 48
# Every seventh listing is rented out already.
UNAVAILABLE_EVERY = 7
SPOT_SHARE = 0.25
SPOT_DISCOUNT = (0.45, 0.55)

# Each type's pool holds this many of its largest pods.
CLOUD_POOL_PODS = 2

CLOUD_TYPES: tuple[tuple[str, int, tuple[float, float], bool, int], ...] = seed_table(
    __package__, "cloud_types"
)


@dataclass
class Listing:
    """One host's GPUs on the marketplace; `price_per_hour` (per GPU) walks as prices drift."""

    id: str
    gpu_model: str
    gpu_count: int
    vram_gb: int
    price_per_hour: float
    pricing_tier: str
    instance_type: str
    ollama_models: list[str]
    location: str
    available: bool
    uptime_pct: float

    def to_json(self) -> dict[str, object]:
        return wire(self, key=camel, leave=("uptime_pct",), health={"uptimePct": self.uptime_pct})


@dataclass
class GpuType:
    """One GPU cloud type; both prices walk as prices drift."""

    gpu_type: str
    vram_gb: int
    price_per_hour: float
    spot_price_per_hour: float | None
    available: bool
    max_count: int
    # GPUs of this type free to deploy: pods take them, destroying a pod gives them back.
    free_gpus: int = 0

    def to_json(self) -> dict[str, object]:
        # The largest pod that can be deployed now; the type's own limit while sold out.
        largest = min(self.max_count, self.free_gpus) if self.free_gpus else self.max_count
        return wire(self, key=camel, leave=("max_count", "free_gpus"), maxCount=largest)


def seed_listings(seed: int) -> list[Listing]:
    """The marketplace for `seed`, in id order: the search's default order."""
    rng = random.Random(seed)
    listings = []
    for index in range(LISTING_COUNT):
        gpu_model, vram_gb, (low, high) = rng.choice(LISTING_MODELS)
        spot = rng.random() < SPOT_SHARE
        on_demand_price = rng.uniform(low, high)
        instance_type = rng.choice(INSTANCE_TYPES)
        listings.append(
            Listing(
                id=f"lst_{index:02d}{rng.getrandbits(40):010x}",
                gpu_model=gpu_model,
                gpu_count=rng.choice(GPU_COUNT_CHOICES),
                vram_gb=vram_gb,
                price_per_hour=round(
                    on_demand_price * (rng.uniform(*SPOT_DISCOUNT) if spot else 1.0), 2
                ),
                pricing_tier="spot" if spot else "on-demand",
                instance_type=instance_type,
                ollama_models=(
                    sorted(rng.sample(OLLAMA_MODELS, rng.randint(1, 3)))
                    if instance_type == "ollama"
                    else []
                ),
                location=rng.choice(LOCATIONS),
                available=index % UNAVAILABLE_EVERY != UNAVAILABLE_EVERY - 1,
                uptime_pct=round(rng.uniform(95.0, 99.99), 2),
            )
        )
    return listings


def seed_gpu_types(seed: int) -> list[GpuType]:
    """The GPU cloud's types for `seed`; one of them is sold out."""
    rng = random.Random(seed + 1)
    sold_out = rng.randrange(len(CLOUD_TYPES))
    types = []
    for index, (gpu_type, vram_gb, (low, high), sells_spot, max_count) in enumerate(CLOUD_TYPES):
        on_demand = round(rng.uniform(low, high), 2)
        types.append(
            GpuType(
                gpu_type=gpu_type,
                vram_gb=vram_gb,
                price_per_hour=on_demand,
                spot_price_per_hour=(
                    round(on_demand * rng.uniform(*SPOT_DISCOUNT), 2) if sells_spot else None
                ),
                available=index != sold_out,
                max_count=max_count,
                free_gpus=0 if index == sold_out else max_count * CLOUD_POOL_PODS,
            )
        )
    return types
