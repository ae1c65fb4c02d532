"""EmpirioLabs catalog JSON to offers: pure functions, tested on fixtures.

`GET /v1/gpu/catalog` lists one item per GPU model with its regions and a per-GPU hourly price.
Each item becomes one on-demand offer per region and GPU count (1, 2, 4, 8 up to `max_gpus`).
Items the provider marks unavailable are kept with `available=False`; the catalog decides
whether to show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pricing.gpus import canonical_gpu
from pricing.offer import Offer, offer_id
from providers.parsing import (
    MalformedItem,
    boolean,
    build_offer,
    field,
    integer,
    optional,
    optional_number,
    page_reader,
    price,
    text,
)

PROVIDER = "empiriolabs"
GPU_COUNTS = (1, 2, 4, 8)
# Where an item names no region: deploys take no region, so the offer is still rentable.
DEFAULT_REGION = "Global"


def parse_catalog_item(item: Mapping[str, Any], fetched_at: datetime) -> list[Offer]:
    """One catalog item as offers for each of its regions and GPU counts."""
    gpu_slug = text(field(item, "slug"), "slug")
    raw_name = text(field(item, "name"), "name")
    price_per_gpu = price(field(item, "price_hourly"), "price_hourly")
    vram_hint = optional_number(item, "vram_gb")
    gpu = canonical_gpu(raw_name, vram_hint)
    listed_available = boolean(optional(item, "available"), "available", default=True)
    available_count = _optional_count(item, "available_count")
    max_gpus = _optional_count(item, "max_gpus")
    if max_gpus is None:
        max_gpus = 1
    if max_gpus < 1:
        raise MalformedItem(f"max_gpus is not positive: {max_gpus}")
    return [
        build_offer(
            PROVIDER,
            offer_id(PROVIDER, gpu_slug, region, f"{count}x"),
            gpu,
            price_per_gpu,
            region,
            fetched_at,
            gpu_count=count,
            # `available_count` counts GPUs: an 8x offer needs eight of them free.
            available=listed_available and (available_count is None or available_count >= count),
            available_count=available_count,
            ref={"gpu_slug": gpu_slug, "gpu_count": str(count)},
        )
        for region in _regions(item)
        for count in GPU_COUNTS
        if count <= max_gpus
    ]


# The whole catalog response; a wrong top-level shape fails the page, a bad item is skipped.
parse_catalog = page_reader(PROVIDER, ("data",), parse_catalog_item, "the catalog")


def _regions(item: Mapping[str, Any]) -> list[str]:
    raw = optional(item, "regions")
    if raw is None:
        return [DEFAULT_REGION]
    if not isinstance(raw, list):
        raise MalformedItem(f"regions is not a list: {raw!r}")
    regions = list(dict.fromkeys(text(region, "region") for region in raw))
    return regions or [DEFAULT_REGION]


def _optional_count(item: Mapping[str, Any], name: str) -> int | None:
    value = optional(item, name)
    if value is None:
        return None
    count = integer(value, name)
    if count < 0:
        raise MalformedItem(f"{name} is negative: {count}")
    return count
