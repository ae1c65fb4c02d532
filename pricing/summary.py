"""One row per GPU model across the catalog: the `GET /v1/gpus` overview.

Built with every refresh from columns of the offers (`pricing.columns`), grouped by numpy: a
million offers are summed in a fraction of a second, in steps that never hold the interpreter
long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pricing import columns
from pricing.offer import ON_DEMAND, Offer

_NONE = np.iinfo(np.int64).max  # "no price" while taking minimums


@dataclass
class GpuRow:
    gpu: str
    vram_gb: int
    offers: int = 0
    providers: set[str] = field(default_factory=set)
    min_on_demand_price: int | None = None
    min_spot_price: int | None = None
    available_count: int | None = None


def summarize_gpus(offers: Sequence[Offer]) -> list[GpuRow]:
    """Aggregate available whole-card offers per GPU, cheapest on-demand first (GPUs with none
    last). Slices of a card (MIG, time-sliced: `Offer.slice`) are left out: counted, they would
    advertise a fraction of a GPU as the price of one.
    """
    chosen = [o for o in offers if o.available and o.slice is None]
    if not chosen:
        return []
    gpus = columns.column([o.gpu for o in chosen])
    providers = columns.column([o.provider for o in chosen])
    size = len(gpus.values)
    gpu, provider = gpus.codes, providers.codes
    vram = np.fromiter((o.vram_gb for o in chosen), np.int64, len(chosen))
    price = np.fromiter((o.price_per_gpu_hour for o in chosen), np.int64, len(chosen))
    is_on_demand = np.fromiter((o.tier is ON_DEMAND for o in chosen), np.bool_, len(chosen))
    counts = columns.array([o.available_count for o in chosen], np.float64)  # None: NaN
    counted = ~np.isnan(counts)

    memory = np.zeros(size, np.int64)
    np.maximum.at(memory, gpu, vram)
    min_on_demand, min_spot = np.full(size, _NONE), np.full(size, _NONE)
    np.minimum.at(min_on_demand, gpu[is_on_demand], price[is_on_demand])
    np.minimum.at(min_spot, gpu[~is_on_demand], price[~is_on_demand])
    available_count = np.zeros(size, np.int64)
    np.add.at(available_count, gpu[counted], counts[counted].astype(np.int64))
    has_count = np.bincount(gpu[counted], minlength=size) > 0
    offer_count = np.bincount(gpu, minlength=size)
    rows = [
        GpuRow(
            str(name),
            int(memory[code]),
            offers=int(offer_count[code]),
            min_on_demand_price=_price(min_on_demand[code]),
            min_spot_price=_price(min_spot[code]),
            available_count=int(available_count[code]) if has_count[code] else None,
        )
        for code, name in enumerate(gpus.values)
    ]
    provider_names = list(providers.values)
    for pair in np.unique(gpu.astype(np.int64) * len(provider_names) + provider):
        code, which = divmod(int(pair), len(provider_names))
        rows[code].providers.add(str(provider_names[which]))
    return sorted(
        rows, key=lambda r: (r.min_on_demand_price is None, r.min_on_demand_price or 0, r.gpu)
    )


def _price(value: np.int64) -> int | None:
    return None if value == _NONE else int(value)
