"""One row per GPU model across the catalog: the `GET /v1/gpus` overview."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pricing.offer import Offer, Tier


@dataclass
class GpuRow:
    gpu: str
    vram_gb: int
    offers: int = 0
    providers: set[str] = field(default_factory=set)
    min_on_demand_price: int | None = None
    min_spot_price: int | None = None
    available_count: int | None = None


def _lower(current: int | None, candidate: int) -> int:
    return candidate if current is None else min(current, candidate)


def summarize_gpus(offers: Iterable[Offer]) -> list[GpuRow]:
    """Aggregate available offers per GPU, cheapest on-demand first (GPUs with none last)."""
    rows: dict[str, GpuRow] = {}
    memory: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for offer in offers:
        if not offer.available:
            continue
        memory[offer.gpu][offer.vram_gb] += 1
        row = rows.setdefault(offer.gpu, GpuRow(offer.gpu, offer.vram_gb))
        row.offers += 1
        row.providers.add(offer.provider)
        if offer.tier is Tier.ON_DEMAND:
            row.min_on_demand_price = _lower(row.min_on_demand_price, offer.price_per_gpu_hour)
        else:
            row.min_spot_price = _lower(row.min_spot_price, offer.price_per_gpu_hour)
        if offer.available_count is not None:
            row.available_count = (row.available_count or 0) + offer.available_count
    for name, row in rows.items():
        row.vram_gb = memory[name].most_common(1)[0][0]
    return sorted(
        rows.values(),
        key=lambda r: (r.min_on_demand_price is None, r.min_on_demand_price or 0, r.gpu),
    )
