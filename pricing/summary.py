"""One row per GPU model across the catalog: the `GET /v1/gpus` overview."""

from __future__ import annotations

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
    """Aggregate available whole-card offers per GPU, cheapest on-demand first (GPUs with none
    last). Slices of a card (MIG, time-sliced: `Offer.slice`) are left out: counted, they would
    advertise a fraction of a GPU as the price of one.
    """
    whole = [o for o in offers if o.available and o.slice is None]
    full_memory: dict[str, int] = {}
    for offer in whole:
        full_memory[offer.gpu] = max(full_memory.get(offer.gpu, 0), offer.vram_gb)
    rows: dict[str, GpuRow] = {}
    for offer in whole:
        row = rows.setdefault(offer.gpu, GpuRow(offer.gpu, full_memory[offer.gpu]))
        row.offers += 1
        row.providers.add(offer.provider)
        if offer.available_count is not None:
            row.available_count = (row.available_count or 0) + offer.available_count
        if offer.tier is Tier.ON_DEMAND:
            row.min_on_demand_price = _lower(row.min_on_demand_price, offer.price_per_gpu_hour)
        else:
            row.min_spot_price = _lower(row.min_spot_price, offer.price_per_gpu_hour)
    return sorted(
        rows.values(),
        key=lambda r: (r.min_on_demand_price is None, r.min_on_demand_price or 0, r.gpu),
    )
