"""IC GPU tier listings to offers: pure functions, tested on fixtures.

`GET /api/v1/gpu-tiers` lists tiers (dedicated, MIG, time-sliced), each on one GPU model in some
regions. Every tier and region gives an interactive offer (on-demand, `price_per_hour`) and a
batch offer (spot: preemptible, `batch_price_per_hour`; IC GPU states no interruption odds).
A MIG tier's `vram_gb` is its slice's memory, and that is what its offers carry, while `gpu`
stays the card's canonical name. `available` counts free GPUs across the tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, Offer, Tier, offer_id
from providers.parsing import (
    MalformedItem,
    boolean,
    field,
    integer,
    items_of,
    number,
    optional,
    page_reader,
    price,
    text,
)

PROVIDER = "icgpu"
MIG_TIER = "mig"
INTERACTIVE = "interactive"
BATCH = "batch"


def parse_tier(item: Mapping[str, Any], fetched_at: datetime) -> list[Offer]:
    """One tier as an interactive and (where priced) a batch offer in each of its regions."""
    tier = text(field(item, "tier"), "tier")
    raw_name = text(field(item, "gpu_model"), "gpu_model")
    raw_vram = optional(item, "vram_gb")
    vram = None if raw_vram is None else number(raw_vram, "vram_gb")
    prices = {INTERACTIVE: price(field(item, "price_per_hour"), "price_per_hour")}
    batch_price = optional(item, "batch_price_per_hour")
    if batch_price is not None:
        prices[BATCH] = price(batch_price, "batch_price_per_hour")
    available, available_count = _availability(optional(item, "available"))
    shared = boolean(optional(item, "shared"), "shared", default=False)
    regions = [text(region, "regions[]") for region in items_of(item, "regions")]
    if not regions:
        raise MalformedItem("tier has no regions")

    if tier.lower() == MIG_TIER:
        if vram is None or vram <= 0:
            raise MalformedItem(f"mig tier without the slice's vram_gb: {raw_vram!r}")
        # The card's name alone: the slice's memory would read as a different card.
        gpu = canonical_gpu(raw_name, None)
        vram_gb = round(vram)
    else:
        gpu = canonical_gpu(raw_name, vram)
        vram_gb = gpu.vram_gb

    offers = []
    for region in regions:
        for workload, per_gpu in prices.items():
            ref = {"tier": tier, "gpu_model": raw_name, "region": region, "workload_type": workload}
            if shared:
                ref["shared"] = "true"
            offers.append(
                Offer(
                    id=offer_id(PROVIDER, tier, raw_name, region, workload),
                    provider=PROVIDER,
                    gpu=gpu.name,
                    gpu_count=1,
                    vram_gb=vram_gb,
                    base_price_per_gpu_hour=per_gpu,
                    tier=Tier.ON_DEMAND if workload == INTERACTIVE else Tier.SPOT,
                    region=region,
                    instance_type=InstanceType.CONTAINER,
                    available=available,
                    available_count=available_count,
                    updated_at=fetched_at,
                    gpu_known=gpu.known,
                    ref=ref,
                )
            )
    return offers


# The tiers response; a wrong top-level shape fails the page, a bad tier is skipped.
parse_tiers = page_reader(PROVIDER, ("tiers",), parse_tier, "the tiers response")


def _availability(value: Any) -> tuple[bool, int | None]:
    """`available` is documented as a count; a bare boolean or nothing is tolerated."""
    if value is None:
        return True, None
    if isinstance(value, bool):
        return value, None
    count = integer(value, "available")
    if count < 0:
        raise MalformedItem(f"available is negative: {value!r}")
    return count > 0, count
