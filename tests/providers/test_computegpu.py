"""ComputeGPU: how its search pages count, and the adapter against its simulator over HTTP.

What ComputeGPU's recorded listings and GPU types parse to is checked with every provider's in
`test_parsing.py`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import Offer, Tier
from providers.base import OfferFilters
from providers.computegpu.adapter import SEARCH_PATH, TYPES_PATH, ComputeGpuAdapter, search_params
from providers.computegpu.parse import GPU_COUNTS, parse_listings
from providers.simulators.computegpu.app import MAX_PAGE_SIZE
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, fixture_loader

load = fixture_loader("computegpu")
API_KEY = "gpu_test_key_do_not_leak"
pytestmark = pytest.mark.provider("computegpu", api_key=API_KEY, seed=23)


# --- parsing: what the search pages count -----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "received", "total"),
    [("search.json", 3, 3), ("search_malformed.json", 8, 8), ("search_loose.json", 2, 2)],
)
def test_paging_moves_past_every_listing_it_was_sent(
    answer: str, received: int, total: int
) -> None:
    """Skipped listings count too: the next page starts after them."""
    batch = parse_listings(load(answer), datetime(2026, 11, 20, tzinfo=UTC))

    assert (batch.received, batch.total) == (received, total)


def test_filters_become_search_parameters() -> None:
    assert search_params(OfferFilters()) == {}
    assert search_params(
        OfferFilters(gpu="RTX4090", max_price_per_gpu_hour=450_000, min_vram_gb=24)
    ) == {"gpu": "RTX4090", "maxPrice": "0.450000", "minVram": "24"}


# --- the adapter against the simulator, over HTTP ----------------------------------------------


def cloud_offer_count(sim: Any) -> int:
    return sum(
        (1 if gpu_type.spot_price_per_hour is None else 2)
        * sum(1 for n in GPU_COUNTS if n <= gpu_type.max_count)
        for gpu_type in sim.gpu_types
    )


def listing_offers(offers: list[Offer]) -> dict[str, Offer]:
    return {offer.ref["listing_id"]: offer for offer in offers if offer.ref["family"] == "listing"}


def test_adapter_reads_both_families_in_full(adapter: ComputeGpuAdapter, sim: Any) -> None:
    page = adapter.list_offers()

    assert page.skipped == []
    assert len(page.offers) == len(sim.listings) + cloud_offer_count(sim) >= 30
    assert len({offer.id for offer in page.offers}) == len(page.offers)
    listings = listing_offers(page.offers)
    assert listings.keys() == {listing.id for listing in sim.listings}
    for listing in sim.listings:
        offer = listings[listing.id]
        assert offer.base_price_per_gpu_hour == round(listing.price_per_hour * 1_000_000)
        assert offer.gpu == canonical_gpu(listing.gpu_model, listing.vram_gb).name
        assert (offer.region, offer.gpu_count) == (listing.location, listing.gpu_count)
        assert offer.ref["instance_type"] == listing.instance_type
    assert {(offer.ref["family"], offer.tier) for offer in page.offers} == {
        ("listing", Tier.ON_DEMAND),
        ("listing", Tier.SPOT),
        ("cloud", Tier.ON_DEMAND),
        ("cloud", Tier.SPOT),
    }
    assert all(offer.gpu_known for offer in page.offers)
    assert any(not offer.available for offer in page.offers)
    assert sim.last_authorization == f"Bearer {API_KEY}"


def test_adapter_pages_through_the_search(adapter: ComputeGpuAdapter, sim: Any) -> None:
    searches_before = sim.requests[SEARCH_PATH]
    types_before = sim.requests[TYPES_PATH]

    adapter.list_offers()

    pages = math.ceil(len(sim.listings) / MAX_PAGE_SIZE)
    assert pages > 1
    assert sim.requests[SEARCH_PATH] - searches_before == pages
    assert sim.requests[TYPES_PATH] - types_before == 1
    assert sim.last_query[SEARCH_PATH]["offset"] == str((pages - 1) * MAX_PAGE_SIZE)


def test_filters_are_pushed_down_to_the_search(adapter: ComputeGpuAdapter, sim: Any) -> None:
    filters = OfferFilters(gpu="RTX4090", max_price_per_gpu_hour=600_000, min_vram_gb=24)

    page = adapter.list_offers(filters)

    assert sim.last_query[SEARCH_PATH] | {"offset": "0"} == {
        "gpu": "RTX4090",
        "maxPrice": "0.600000",
        "minVram": "24",
        "limit": "100",
        "offset": "0",
    }
    expected = {
        listing.id
        for listing in sim.listings
        if "rtx4090" in listing.gpu_model.lower().replace(" ", "")
        and listing.price_per_hour <= 0.6
        and listing.vram_gb >= 24
    }
    listings = listing_offers(page.offers)
    assert 0 < len(listings) < len(sim.listings)
    assert listings.keys() == expected
    # The GPU cloud's type list takes no filters: the caller filters it.
    assert len(page.offers) - len(listings) == cloud_offer_count(sim)


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"pricingTier": "spot"}, lambda listing: listing["pricingTier"] == "spot"),
        ({"instanceType": "docker"}, lambda listing: listing["instanceType"] == "docker"),
        ({"minVram": "48"}, lambda listing: listing["vramGb"] >= 48),
    ],
)
def test_simulator_filters_server_side(
    provider: SimulatedProvider, sim: Any, params: dict[str, str], check: Any
) -> None:
    body = httpx.get(f"{provider.url}{SEARCH_PATH}", params={**params, "limit": 500}).json()

    assert 0 < body["total"] < len(sim.listings)
    assert body["limit"] == MAX_PAGE_SIZE
    assert len(body["listings"]) == min(body["total"], MAX_PAGE_SIZE)
    assert all(check(listing) for listing in body["listings"])


def test_simulator_answers_bad_parameters_with_its_error_shape(provider: SimulatedProvider) -> None:
    response = httpx.get(f"{provider.url}{SEARCH_PATH}", params={"maxPrice": "cheap"})

    assert response.status_code == 400
    assert "maxPrice" in response.json()["error"]


def test_drifted_prices_are_the_ones_the_simulator_holds(
    adapter: ComputeGpuAdapter, sim: Any, knobs: SimulatorKnobs
) -> None:
    knobs.price_drift = 0.1

    adapter.list_offers()
    listings = listing_offers(adapter.list_offers().offers)

    # The walk is the simulator's state: it holds the prices it last served.
    for listing in sim.listings:
        assert listings[listing.id].base_price_per_gpu_hour == round(listing.price_per_hour * 1e6)
