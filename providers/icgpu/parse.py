"""IC GPU tier listings to offers: pure functions, tested on fixtures.

`GET /api/v1/gpu-tiers` lists tiers (dedicated, MIG, time-sliced), each on one GPU model in some
regions. Every tier and region gives an interactive offer (on-demand, `price_per_hour`) and a
batch offer (spot: preemptible, `batch_price_per_hour`; IC GPU states no interruption odds).
A MIG tier's `vram_gb` is its slice's memory, and that is what its offers carry, while `gpu`
stays the card's canonical name; its offers are the slice `mig-<profile>` (`mig_profile` where
given, else `mig-<memory>gb`), a share of the card by memory. A `shared` (time-sliced) tier's
offers are the slice `timesliced`. `available` counts free GPUs across the tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pricing.gpus import canonical_gpu
from pricing.offer import Offer, Tier, offer_id
from providers import parsing as read

PROVIDER = "icgpu"
MIG_TIER = "mig"
INTERACTIVE = "interactive"
BATCH = "batch"
TIMESLICED = "timesliced"
# A time-sliced tier shares one card among tenants and states no count: read as a quarter.
TIMESLICED_FRACTION = 0.25


def parse_tier(item: Mapping[str, Any], fetched_at: datetime) -> list[Offer]:
    """One tier as an interactive and (where priced) a batch offer in each of its regions."""
    tier = read.text(read.field(item, "tier"), "tier")
    raw_name = read.text(read.field(item, "gpu_model"), "gpu_model")
    raw_vram = read.optional(item, "vram_gb")
    vram = None if raw_vram is None else read.number(raw_vram, "vram_gb")
    prices = {INTERACTIVE: read.price(read.field(item, "price_per_hour"), "price_per_hour")}
    batch_price = read.optional(item, "batch_price_per_hour")
    if batch_price is not None:
        prices[BATCH] = read.price(batch_price, "batch_price_per_hour")
    available, available_count = _availability(read.optional(item, "available"))
    shared = read.boolean(read.optional(item, "shared"), "shared", default=False)
    regions = [read.text(region, "regions[]") for region in read.items_of(item, "regions")]
    if not regions:
        raise read.MalformedItem("tier has no regions")

    slice_, fraction = None, None
    if tier.lower() == MIG_TIER:
        if vram is None or vram <= 0:
            raise read.MalformedItem(f"mig tier without the slice's vram_gb: {raw_vram!r}")
        # The card's name alone: the slice's memory would read as a different card.
        gpu = canonical_gpu(raw_name, None)
        vram_gb = round(vram)
        profile = read.optional(item, "mig_profile")
        name = f"{vram_gb}gb" if profile is None else read.text(profile, "mig_profile")
        slice_ = f"mig-{name}"
    else:
        gpu = canonical_gpu(raw_name, vram)
        vram_gb = gpu.vram_gb
    # What renting needs besides the region and the workload type.
    tier_ref = {"tier": tier, "gpu_model": raw_name}
    if shared:
        slice_, fraction = TIMESLICED, TIMESLICED_FRACTION
        tier_ref["shared"] = "true"

    offers = []
    for region in regions:
        for workload, per_gpu in prices.items():
            offers.append(
                read.build_offer(
                    PROVIDER,
                    offer_id(PROVIDER, tier, raw_name, region, workload),
                    gpu,
                    per_gpu,
                    region,
                    fetched_at,
                    tier=Tier.ON_DEMAND if workload == INTERACTIVE else Tier.SPOT,
                    available=available,
                    available_count=available_count,
                    vram_gb=vram_gb,
                    slice_=slice_,
                    gpu_fraction=fraction,
                    ref={**tier_ref, "region": region, "workload_type": workload},
                )
            )
    return offers


# The tiers response; a wrong top-level shape fails the page, a bad tier is skipped.
parse_tiers = read.page_reader(PROVIDER, ("tiers",), parse_tier, "the tiers response")


def _availability(value: Any) -> tuple[bool, int | None]:
    """`available` is documented as a count; a bare boolean or nothing is tolerated."""
    if value is None:
        return True, None
    if isinstance(value, bool):
        return value, None
    count = read.integer(value, "available")
    if count < 0:
        raise read.MalformedItem(f"available is negative: {value!r}")
    return count > 0, count
