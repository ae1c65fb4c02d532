"""A refresh keeps the objects of offers that did not change, and shares the text of new ones."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pricing.catalog import Catalog
from pricing.offer import InstanceType, Offer, Tier

FETCHED = datetime(2026, 11, 20, tzinfo=UTC)


def listed(number: int, price: int, fetched_at: datetime = FETCHED) -> Offer:
    # Text built at run time, so it is a fresh object the catalog may or may not share.
    return Offer(
        id=f"aivory:host-{number}",
        provider="".join(["ai", "vory"]),
        gpu="".join(["H1", "00 SXM"]),
        gpu_count=1,
        vram_gb=80,
        base_price_per_gpu_hour=price,
        tier=Tier.SPOT,
        region="".join(["Paris, ", "FR"]),
        instance_type=InstanceType.CONTAINER,
        available=True,
        available_count=None,
        updated_at=fetched_at,
        interruption_probability=0.05,
        ref={"region": "".join(["Paris, ", "FR"])},
    )


def test_unchanged_offers_keep_their_object_and_changed_ones_are_new() -> None:
    catalog = Catalog(["aivory"])
    first = catalog.take([listed(1, 1_000_000), listed(2, 2_000_000)])
    catalog.install("aivory", first, FETCHED)

    later = FETCHED + timedelta(minutes=1)
    second = catalog.take([listed(1, 1_000_000, later), listed(2, 2_100_000, later)])

    assert second[0] is first[0]
    assert second[0].updated_at == later
    assert second[1] is not first[1]
    assert second[1].price_per_gpu_hour == 2_100_000
    assert second[1].effective_price_per_gpu_hour > second[1].price_per_gpu_hour


def test_new_offers_share_their_text() -> None:
    catalog = Catalog(["aivory"])
    offers = catalog.take([listed(1, 1_000_000), listed(2, 2_000_000)])
    for field in ("provider", "gpu", "region"):
        value = getattr(offers[0], field)
        assert value is sys.intern(value)
        assert getattr(offers[1], field) is value
    assert offers[0].ref["region"] is offers[1].ref["region"]


def test_a_new_policy_prices_every_offer_again() -> None:
    catalog = Catalog(["aivory"])
    catalog.install("aivory", catalog.take([listed(1, 1_000_000)]), FETCHED)
    [before] = catalog.index.offers
    catalog.set_policy(replace(catalog.policy, observed_rates={("aivory", "H100 SXM"): 0.2}))
    [after] = catalog.index.offers
    assert after is not before
    assert (after.interruption_probability, before.interruption_probability) == (0.2, 0.05)
