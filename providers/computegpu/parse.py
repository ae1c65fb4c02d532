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
from pricing.offer import Offer, Tier, offer_id
from providers import parsing as read
from providers.base import MalformedResponse, OfferPage

PROVIDER = "computegpu"
GPU_COUNTS = (1, 2, 4, 8)
CLOUD_REGION = "Global"
UNKNOWN_LOCATION = "Unknown"
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
        items = read.items_of(payload, "listings")
        total = read.optional(payload, "total")
        total_count = None if total is None else read.integer(total, "total")
    except read.MalformedItem as exc:
        raise MalformedResponse(PROVIDER, f"search is not the documented shape: {exc}") from None
    page = OfferPage()
    listings = read.iter_offers(
        PROVIDER, items, lambda item: [parse_listing(item, fetched_at)], page.skipped
    )
    page.offers = list(listings)
    return ListingBatch(page=page, received=len(items), total=total_count)


def parse_listing(item: Mapping[str, Any], fetched_at: datetime) -> Offer:
    """One marketplace listing as one offer."""
    listing_id = read.text(read.field(item, "id"), "id")
    gpu = canonical_gpu(
        read.text(read.field(item, "gpuModel"), "gpuModel"), read.optional_number(item, "vramGb")
    )
    gpu_count = _optional_integer(item, "gpuCount", default=1)
    if gpu_count < 1:
        raise read.MalformedItem(f"gpuCount is not positive: {gpu_count}")
    location = read.optional(item, "location")
    models = _models(item)
    ref = {"family": "listing", "listing_id": listing_id, "instance_type": _instance_type(item)}
    if models:
        # Renting checks the workload's model against this (ref values are strings).
        ref["ollama_models"] = ",".join(models)
    return read.build_offer(
        PROVIDER,
        offer_id(PROVIDER, "listing", listing_id),
        gpu,
        read.price(read.field(item, "pricePerHour"), "pricePerHour"),
        UNKNOWN_LOCATION if location is None else read.text(location, "location"),
        fetched_at,
        gpu_count=gpu_count,
        tier=_tier(read.optional(item, "pricingTier")),
        available=read.boolean(read.optional(item, "available"), "available", default=True),
        models=models,
        ref=ref,
    )


def _instance_type(item: Mapping[str, Any]) -> str:
    """How the listing is reached once rented; the documented default is an Ollama endpoint."""
    raw = read.optional(item, "instanceType")
    return DEFAULT_INSTANCE_TYPE if raw is None else read.text(raw, "instanceType").lower()


def _models(item: Mapping[str, Any]) -> list[str] | None:
    """The models the listing serves (`ollamaModels`); None where it names none, so a listing
    that publishes no list is not held to one."""
    models = read.optional(item, "ollamaModels")
    if models is None:
        return None
    if not isinstance(models, list):
        raise read.MalformedItem(f"ollamaModels is not a list: {models!r}")
    names = [read.text(model, "ollamaModels item") for model in models]
    return names or None


def parse_gpu_type(item: Mapping[str, Any], fetched_at: datetime) -> list[Offer]:
    """One GPU cloud type as its on-demand and spot offers for each GPU count."""
    gpu_type = read.text(read.field(item, "gpuType"), "gpuType")
    gpu = canonical_gpu(gpu_type, read.optional_number(item, "vramGb"))
    prices = {Tier.ON_DEMAND: read.price(read.field(item, "pricePerHour"), "pricePerHour")}
    spot = read.optional(item, "spotPricePerHour")
    if spot is not None:
        prices[Tier.SPOT] = read.price(spot, "spotPricePerHour")
    available = read.boolean(read.optional(item, "available"), "available", default=True)
    max_count = _optional_integer(item, "maxCount", default=1)
    if max_count < 1:
        raise read.MalformedItem(f"maxCount is not positive: {max_count}")
    return [
        read.build_offer(
            PROVIDER,
            offer_id(PROVIDER, "cloud", gpu_type, f"{count}x", tier),
            gpu,
            price_per_gpu,
            CLOUD_REGION,
            fetched_at,
            gpu_count=count,
            tier=tier,
            available=available,
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
parse_gpu_types = read.page_reader(PROVIDER, ("types",), parse_gpu_type, "the GPU types response")


def _tier(raw: Any) -> Tier:
    if raw is None:
        return Tier.ON_DEMAND
    name = read.text(raw, "pricingTier").lower().replace("_", "-")
    if name not in _TIERS:
        raise read.MalformedItem(f"pricingTier is not a known tier: {raw!r}")
    return _TIERS[name]


def _optional_integer(item: Mapping[str, Any], name: str, *, default: int) -> int:
    value = read.optional(item, name)
    return default if value is None else read.integer(value, name)
