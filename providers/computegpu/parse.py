"""ComputeGPU JSON to offers: pure functions for both offer families, tested on fixtures.

Marketplace listings (`GET /api/v1/marketplace/search`) are community hosts: one offer per
listing, in the listing's tier and location. `pricePerHour` is read per GPU, as the GPU cloud's
`pricePerHour` is, so the search's `maxPrice` compares with the same number the broker does.
GPU cloud types (`GET /api/v1/gpu/types`) have no region: each type gives an on-demand offer,
and a spot offer where `spotPricePerHour` is set, for 1, 2, 4 and 8 GPUs up to `maxCount`.
ComputeGPU publishes no interruption probability; the catalog estimates one for spot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, Offer, Tier, offer_id
from providers.base import MalformedResponse, OfferPage
from providers.parsing import (
    MalformedItem,
    boolean,
    field,
    integer,
    items_of,
    optional,
    optional_number,
    page_reader,
    parse_items,
    price,
    text,
)

PROVIDER = "computegpu"
GPU_COUNTS = (1, 2, 4, 8)
CLOUD_REGION = "Global"
UNKNOWN_LOCATION = "Unknown"
# How a listing is reached once rented; the documented default is an Ollama endpoint.
DEFAULT_INSTANCE_TYPE = "ollama"
_TIERS = {"on-demand": Tier.ON_DEMAND, "ondemand": Tier.ON_DEMAND, "spot": Tier.SPOT}


@dataclass(frozen=True)
class ListingBatch:
    """One page of search results and where it sits in the whole result."""

    page: OfferPage
    # Every item the page held, malformed ones included: what the next offset moves past.
    received: int
    # The provider's count of all matching listings; None where it did not say.
    total: int | None


def parse_listings(payload: Any, fetched_at: datetime) -> ListingBatch:
    """One search response; a wrong top-level shape fails the page, a bad listing is skipped."""
    try:
        items = items_of(payload, "listings")
        total = optional(payload, "total")
        total_count = None if total is None else integer(total, "total")
    except MalformedItem as exc:
        raise MalformedResponse(PROVIDER, f"search is not the documented shape: {exc}") from None
    page = OfferPage()
    page.offers = parse_items(
        PROVIDER, items, lambda item: [parse_listing(item, fetched_at)], page.skipped
    )
    return ListingBatch(page=page, received=len(items), total=total_count)


def parse_listing(item: Mapping[str, Any], fetched_at: datetime) -> Offer:
    """One marketplace listing as one offer."""
    listing_id = text(field(item, "id"), "id")
    gpu = canonical_gpu(text(field(item, "gpuModel"), "gpuModel"), optional_number(item, "vramGb"))
    gpu_count = _optional_integer(item, "gpuCount", default=1)
    if gpu_count < 1:
        raise MalformedItem(f"gpuCount is not positive: {gpu_count}")
    location = optional(item, "location")
    return Offer(
        id=offer_id(PROVIDER, "listing", listing_id),
        provider=PROVIDER,
        gpu=gpu.name,
        gpu_count=gpu_count,
        vram_gb=gpu.vram_gb,
        base_price_per_gpu_hour=price(field(item, "pricePerHour"), "pricePerHour"),
        tier=_tier(optional(item, "pricingTier")),
        region=UNKNOWN_LOCATION if location is None else text(location, "location"),
        instance_type=InstanceType.CONTAINER,
        available=boolean(optional(item, "available"), "available", default=True),
        available_count=None,
        updated_at=fetched_at,
        gpu_known=gpu.known,
        ref=_listing_ref(item, listing_id),
    )


def _listing_ref(item: Mapping[str, Any], listing_id: str) -> dict[str, str]:
    """What renting the listing needs: its id, how it is reached, the models it serves.

    `ollama_models` (comma-joined, as ref values are strings) is set only where the listing
    publishes models; a listing that names none is not held to a list.
    """
    instance_type = optional(item, "instanceType")
    ref = {
        "family": "listing",
        "listing_id": listing_id,
        "instance_type": (
            DEFAULT_INSTANCE_TYPE
            if instance_type is None
            else text(instance_type, "instanceType").lower()
        ),
    }
    models = optional(item, "ollamaModels")
    if models is not None:
        if not isinstance(models, list):
            raise MalformedItem(f"ollamaModels is not a list: {models!r}")
        names = [text(model, "ollamaModels item") for model in models]
        if names:
            ref["ollama_models"] = ",".join(names)
    return ref


def parse_gpu_type(item: Mapping[str, Any], fetched_at: datetime) -> list[Offer]:
    """One GPU cloud type as its on-demand and spot offers for each GPU count."""
    gpu_type = text(field(item, "gpuType"), "gpuType")
    gpu = canonical_gpu(gpu_type, optional_number(item, "vramGb"))
    prices = {Tier.ON_DEMAND: price(field(item, "pricePerHour"), "pricePerHour")}
    spot = optional(item, "spotPricePerHour")
    if spot is not None:
        prices[Tier.SPOT] = price(spot, "spotPricePerHour")
    available = boolean(optional(item, "available"), "available", default=True)
    max_count = _optional_integer(item, "maxCount", default=1)
    if max_count < 1:
        raise MalformedItem(f"maxCount is not positive: {max_count}")
    return [
        Offer(
            id=offer_id(PROVIDER, "cloud", gpu_type, f"{count}x", tier),
            provider=PROVIDER,
            gpu=gpu.name,
            gpu_count=count,
            vram_gb=gpu.vram_gb,
            base_price_per_gpu_hour=price_per_gpu,
            tier=tier,
            region=CLOUD_REGION,
            instance_type=InstanceType.CONTAINER,
            available=available,
            available_count=None,
            updated_at=fetched_at,
            gpu_known=gpu.known,
            ref={
                "family": "cloud",
                "gpu_type": gpu_type,
                "gpu_count": str(count),
                "tier": tier.value,
            },
        )
        for tier, price_per_gpu in prices.items()
        for count in GPU_COUNTS
        if count <= max_count
    ]


# The GPU cloud's types response; a wrong top-level shape fails it, a bad type is skipped.
parse_gpu_types = page_reader(PROVIDER, ("types",), parse_gpu_type, "the GPU types response")


def _tier(raw: Any) -> Tier:
    if raw is None:
        return Tier.ON_DEMAND
    name = text(raw, "pricingTier").lower().replace("_", "-")
    if name not in _TIERS:
        raise MalformedItem(f"pricingTier is not a known tier: {raw!r}")
    return _TIERS[name]


def _optional_integer(item: Mapping[str, Any], name: str, *, default: int) -> int:
    value = optional(item, name)
    return default if value is None else integer(value, name)
