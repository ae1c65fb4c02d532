"""AIVory offer listings to offers: pure functions, tested on fixtures.

`GET /v1/gpu/offers` lists one item per upstream provider, GPU model, region and tier, priced per
GPU as a decimal string, usually with the provider's own interruption probability. An item has
no id of its own, so the offer id is built from that identity, and `ref` keeps the raw values the
rent request must repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pricing.gpus import canonical_gpu
from pricing.offer import ON_DEMAND, SPOT, Offer, offer_id
from providers.base import OfferPage
from providers.parsing import (
    boolean,
    build_offer,
    field,
    number,
    parse_page,
    price,
    probability,
    text_field,
)

PROVIDER = "aivory"


def parse_offers(payload: Any, fetched_at: datetime) -> OfferPage:
    """The offers response; a wrong top-level shape fails the page, a bad item is skipped."""
    return parse_page(
        PROVIDER, payload, ("data",), lambda item: [parse_offer(item, fetched_at)], "the offers"
    )


def parse_offer(item: Mapping[str, Any], fetched_at: datetime) -> Offer:
    """One listed offer. Items are spot unless they say `"spot": false`: the API lists spot GPUs.

    Runs once per listed offer (a listing can hold a million): optional fields are read with
    `item.get` (an absent and a null field both read as None), the rest through the shared readers.
    """
    raw_name = text_field(item, "gpu_model")
    provider_id = text_field(item, "provider_id")
    region = text_field(item, "region")
    per_gpu = price(field(item, "price_per_gpu_hour"), "price_per_gpu_hour")
    vram = item.get("vram_gb")
    gpu = canonical_gpu(raw_name, None if vram is None else number(vram, "vram_gb"))
    spot = boolean(item.get("spot"), "spot", default=True)
    raw_probability = item.get("interruption_probability")
    interruption = (
        None
        if raw_probability is None
        else probability(raw_probability, "interruption_probability")
    )
    return build_offer(
        PROVIDER,
        offer_id(PROVIDER, provider_id, raw_name, region, "spot" if spot else "on-demand"),
        gpu,
        per_gpu,
        region,
        fetched_at,
        tier=SPOT if spot else ON_DEMAND,
        available=boolean(item.get("available"), "available", default=True),
        interruption=interruption,
        ref={"gpu_model": raw_name, "provider_id": provider_id, "region": region},
    )
