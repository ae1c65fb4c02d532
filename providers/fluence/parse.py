"""Fluence plan listings to offers: pure functions, tested on fixtures.

Container plans (`GET /gpu/plans/`) are a flat list; a plan is priced for all its GPUs and can be
placed in any of its locations, so each plan gives one offer per location at amount / GPU count.
VM and bare-metal plans (`GET /gpu/plans/vms`, `/gpu/plans/baremetal`) come grouped by GPU model,
then by GPU count; each option inside is one offer, again priced for all its GPUs. Fluence sells
on-demand capacity only. A malformed plan, group, count bucket or option is skipped on its own,
with a note saying where it sat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pricing.gpus import GpuName, canonical_gpu
from pricing.offer import InstanceType, Offer, offer_id
from providers.base import MalformedResponse, OfferPage
from providers.parsing import (
    MalformedItem,
    ParseOne,
    boolean,
    build_offer,
    field,
    integer,
    items_of,
    iter_offers,
    optional,
    optional_number,
    price,
    text,
)

PROVIDER = "fluence"
MACHINE_FAMILIES = (InstanceType.VM, InstanceType.BAREMETAL)


def parse_container_plans(payload: Any, fetched_at: datetime) -> OfferPage:
    """`GET /gpu/plans/`: a wrong top-level shape fails the page, a bad plan is skipped."""
    page = OfferPage()
    page.offers = _each(
        "container",
        _top_level(payload, "container plans"),
        lambda plan: container_offers(plan, fetched_at),
        page.skipped,
    )
    return page


def parse_machine_plans(
    payload: Any, instance_type: InstanceType, fetched_at: datetime
) -> OfferPage:
    """`GET /gpu/plans/vms` or `/gpu/plans/baremetal`, grouped by GPU model then GPU count."""
    if instance_type not in MACHINE_FAMILIES:
        raise ValueError(f"not a machine plan family: {instance_type}")
    family = instance_type.value
    page = OfferPage()
    page.offers = _each(
        family,
        _top_level(payload, f"{family} plans"),
        lambda group: _group_offers(group, instance_type, fetched_at, page.skipped),
        page.skipped,
    )
    return page


def container_offers(plan: Mapping[str, Any], fetched_at: datetime) -> list[Offer]:
    """One container plan as one offer per location."""
    plan_id = text(field(plan, "id"), "id")
    gpu = canonical_gpu(
        text(field(plan, "gpu", "model"), "gpu.model"), optional_number(plan, "gpu", "memory_gb")
    )
    gpu_count = _gpu_count(field(plan, "gpu", "count"), "gpu.count")
    per_gpu = _per_gpu(_hourly_usd(field(plan, "price")), gpu_count)
    available = boolean(optional(plan, "available"), "available", default=True)
    locations = items_of(plan, "locations")
    if not locations:
        raise MalformedItem("plan has no locations")
    offers = []
    for location in locations:
        location_id, region = _location(location)
        offers.append(
            build_offer(
                PROVIDER,
                offer_id(PROVIDER, "plan", plan_id, location_id),
                gpu,
                per_gpu,
                region,
                fetched_at,
                gpu_count=gpu_count,
                available=available,
                ref={"plan_id": plan_id, "location_id": location_id},
            )
        )
    return offers


def machine_option_offer(
    option: Mapping[str, Any],
    gpu: GpuName,
    gpu_count: int,
    instance_type: InstanceType,
    fetched_at: datetime,
) -> Offer:
    """One VM or bare-metal option; `price_per_hour` is for all `gpu_count` GPUs."""
    option_id = text(field(option, "id"), "id")
    location_id, region = _location(field(option, "location"))
    per_gpu = _per_gpu(price(field(option, "price_per_hour"), "price_per_hour"), gpu_count)
    os_options = items_of(option, "os_options")
    if not os_options:
        raise MalformedItem("option has no os_options to deploy with")
    return build_offer(
        PROVIDER,
        offer_id(PROVIDER, instance_type.value, option_id),
        gpu,
        per_gpu,
        region,
        fetched_at,
        gpu_count=gpu_count,
        instance_type=instance_type,
        available=boolean(optional(option, "available"), "available", default=True),
        ref={
            "option_id": option_id,
            "os_image": text(os_options[0], "os_options[0]"),
            "location_id": location_id,
        },
    )


def _group_offers(
    group: Mapping[str, Any],
    instance_type: InstanceType,
    fetched_at: datetime,
    skipped: list[str],
) -> list[Offer]:
    raw_name = text(field(group, "gpu_model"), "gpu_model")
    gpu = canonical_gpu(raw_name, optional_number(group, "memory_gb"))
    label = f"{instance_type.value} {raw_name}"

    def bucket_offers(bucket: Mapping[str, Any]) -> list[Offer]:
        gpu_count = _gpu_count(field(bucket, "gpu_count"), "gpu_count")
        return _each(
            f"{label} x{gpu_count}",
            items_of(bucket, "options"),
            lambda option: [
                machine_option_offer(option, gpu, gpu_count, instance_type, fetched_at)
            ],
            skipped,
        )

    return _each(label, items_of(group, "by_count"), bucket_offers, skipped)


def _each(label: str, items: Iterable[Any], parse_one: ParseOne, skipped: list[str]) -> list[Offer]:
    """The offers of one level of the listing; a skipped item's note says where it sat."""
    return list(iter_offers(PROVIDER, items, parse_one, skipped, where=label))


def _top_level(payload: Any, what: str) -> list[Any]:
    try:
        return items_of(payload)
    except MalformedItem as exc:
        raise MalformedResponse(PROVIDER, f"{what} are not the documented shape: {exc}") from None


def _hourly_usd(price_obj: Any) -> int:
    """A plan's `price` object in micro-dollars per hour; other currencies or periods fail."""
    amount = price(field(price_obj, "amount"), "price.amount")
    currency = optional(price_obj, "currency")
    if currency is not None and text(currency, "price.currency").upper() != "USD":
        raise MalformedItem(f"price.currency is not USD: {currency!r}")
    period = optional(price_obj, "period")
    if period is not None and text(period, "price.period").lower() != "hour":
        raise MalformedItem(f"price.period is not hour: {period!r}")
    return amount


def _per_gpu(total_micros: int, gpu_count: int) -> int:
    return int((Decimal(total_micros) / gpu_count).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _gpu_count(value: Any, name: str) -> int:
    count = integer(value, name)
    if count < 1:
        raise MalformedItem(f"{name} is not positive: {value!r}")
    return count


def _location(location: Any) -> tuple[str, str]:
    """A location's id and its region as shown to users: "Paris, FR"."""
    location_id = text(field(location, "id"), "location.id")
    parts = [
        text(value, name)
        for name in ("city", "country")
        if (value := optional(location, name)) is not None
    ]
    return location_id, ", ".join(parts) or location_id
