"""ComputeGPU: listing and GPU-type parsing on fixtures, and the adapter against its simulator."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, InterruptionSource, Offer, Tier
from providers.base import MalformedResponse, OfferFilters
from providers.computegpu.adapter import SEARCH_PATH, TYPES_PATH, ComputeGpuAdapter, search_params
from providers.computegpu.parse import GPU_COUNTS, parse_gpu_types, parse_listings
from providers.simulators.computegpu.app import MAX_PAGE_SIZE
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, by_id, fixture_loader

load = fixture_loader("computegpu")
FETCHED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
API_KEY = "gpu_test_key_do_not_leak"
pytestmark = pytest.mark.provider("computegpu", api_key=API_KEY, seed=23)


# --- parsing: marketplace listings -----------------------------------------------------------


def test_documented_search_gives_one_offer_per_listing() -> None:
    batch = parse_listings(load("search.json"), FETCHED_AT)

    assert (batch.received, batch.total, batch.page.skipped) == (3, 3, [])
    offers = by_id(batch.page.offers)
    assert sorted(offers) == [
        "computegpu:listing:lst-0b44e2d9",
        "computegpu:listing:lst-7f3a9c01",
        "computegpu:listing:lst-c19d5e77",
    ]
    rtx = offers["computegpu:listing:lst-7f3a9c01"]
    expected_gpu = canonical_gpu("RTX 4090", 24)
    assert (rtx.gpu, rtx.vram_gb, rtx.gpu_known) == (
        expected_gpu.name,
        expected_gpu.vram_gb,
        expected_gpu.known,
    )
    assert rtx.provider == "computegpu"
    assert (rtx.gpu_count, rtx.base_price_per_gpu_hour) == (1, 450_000)
    assert (rtx.tier, rtx.region) == (Tier.ON_DEMAND, "DE")
    assert rtx.instance_type is InstanceType.CONTAINER
    assert (rtx.available, rtx.available_count, rtx.updated_at) == (True, None, FETCHED_AT)
    assert rtx.interruption_probability is None
    assert rtx.interruption_source is InterruptionSource.NONE
    assert rtx.ref == {
        "family": "listing",
        "listing_id": "lst_7f3a9c01",
        "instance_type": "ollama",
        "ollama_models": "llama3",
    }
    assert (rtx.price_per_gpu_hour, rtx.effective_price_per_gpu_hour) == (0, 0)

    a100 = offers["computegpu:listing:lst-0b44e2d9"]
    assert (a100.gpu_count, a100.tier, a100.region) == (2, Tier.SPOT, "US")
    assert a100.ref["instance_type"] == "docker"
    # An empty model list publishes nothing to check a workload against.
    assert "ollama_models" not in a100.ref
    assert offers["computegpu:listing:lst-c19d5e77"].available is False


def test_malformed_listings_are_skipped_and_reported() -> None:
    batch = parse_listings(load("search_malformed.json"), FETCHED_AT)

    assert [offer.ref["listing_id"] for offer in batch.page.offers] == ["lst_good1", "lst_good2"]
    # Paging moves past every item it was sent, skipped ones included.
    assert (batch.received, batch.total) == (8, 8)
    assert len(batch.page.skipped) == 6
    reasons = "\n".join(batch.page.skipped)
    assert "item 1: missing field 'pricePerHour'" in reasons
    assert "item 2: pricePerHour is not a positive price" in reasons
    assert "item 3: pricePerHour is not a price: 'abc'" in reasons
    assert "item 4: missing field 'gpuModel'" in reasons
    assert "item 5 is not an object" in reasons
    assert "item 6: pricingTier is not a known tier: 'reserved'" in reasons


def test_listing_extra_fields_string_numbers_and_nulls_are_tolerated() -> None:
    batch = parse_listings(load("search_loose.json"), FETCHED_AT)

    assert (batch.page.skipped, batch.total) == ([], 2)
    offers = by_id(batch.page.offers)
    strings = offers["computegpu:listing:lst-strings"]
    assert (strings.gpu_count, strings.base_price_per_gpu_hour) == (2, 410_000)
    assert strings.gpu == canonical_gpu("NVIDIA GeForce RTX 4090", 24).name
    assert (strings.tier, strings.region, strings.available) == (Tier.SPOT, "PL", True)
    assert strings.ref["instance_type"] == "docker"
    nulls = offers["computegpu:listing:lst-nulls"]
    assert (nulls.gpu_count, nulls.base_price_per_gpu_hour) == (1, 720_000)
    assert (nulls.tier, nulls.region, nulls.available) == (Tier.ON_DEMAND, "Unknown", True)
    assert nulls.ref["instance_type"] == "ollama"


@pytest.mark.parametrize(
    "payload",
    [[], None, {"total": 3}, {"listings": {"id": "lst_1"}}, {"listings": [], "total": "many"}],
)
def test_a_response_that_is_not_a_search_result_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_listings(payload, FETCHED_AT)


# --- parsing: GPU cloud types ----------------------------------------------------------------


def test_documented_types_give_on_demand_and_spot_offers_per_gpu_count() -> None:
    page = parse_gpu_types(load("types.json"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    expected = (
        [f"computegpu:cloud:rtx-4090:{n}x:{t}" for n in GPU_COUNTS for t in ("on-demand", "spot")]
        + [f"computegpu:cloud:a100-80gb:{n}x:{t}" for n in (1, 2) for t in ("on-demand", "spot")]
        + [f"computegpu:cloud:h200:{n}x:on-demand" for n in GPU_COUNTS]
    )
    assert sorted(offers) == sorted(expected)
    spot = offers["computegpu:cloud:rtx-4090:4x:spot"]
    assert (spot.tier, spot.gpu_count, spot.base_price_per_gpu_hour) == (Tier.SPOT, 4, 260_000)
    assert (spot.region, spot.instance_type, spot.available) == (
        "Global",
        InstanceType.CONTAINER,
        True,
    )
    assert spot.interruption_probability is None
    assert spot.ref == {"family": "cloud", "gpu_type": "RTX 4090", "gpu_count": "4", "tier": "spot"}
    on_demand = offers["computegpu:cloud:rtx-4090:4x:on-demand"]
    assert (on_demand.tier, on_demand.base_price_per_gpu_hour) == (Tier.ON_DEMAND, 510_000)
    assert on_demand.vram_gb == canonical_gpu("RTX 4090", 24).vram_gb
    assert all(not offers[f"computegpu:cloud:h200:{n}x:on-demand"].available for n in GPU_COUNTS)


def test_malformed_types_are_skipped_and_reported() -> None:
    page = parse_gpu_types(load("types_malformed.json"), FETCHED_AT)

    assert sorted(by_id(page.offers)) == [
        "computegpu:cloud:a100-80gb:1x:on-demand",
        "computegpu:cloud:rtx-4090:1x:on-demand",
    ]
    assert len(page.skipped) == 5
    reasons = "\n".join(page.skipped)
    assert "item 1: missing field 'pricePerHour'" in reasons
    assert "item 2: pricePerHour is not a positive price" in reasons
    assert "item 3: spotPricePerHour is not a price: 'abc'" in reasons
    assert "item 4: missing field 'gpuType'" in reasons
    assert "item 5 is not an object" in reasons


def test_type_extra_fields_string_numbers_and_nulls_are_tolerated() -> None:
    page = parse_gpu_types(load("types_loose.json"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    assert sorted(offers) == [
        "computegpu:cloud:l40s:1x:on-demand",
        "computegpu:cloud:rtx-4090:1x:on-demand",
        "computegpu:cloud:rtx-4090:1x:spot",
        "computegpu:cloud:rtx-4090:2x:on-demand",
        "computegpu:cloud:rtx-4090:2x:spot",
    ]
    assert offers["computegpu:cloud:rtx-4090:2x:spot"].base_price_per_gpu_hour == 260_000
    l40s = offers["computegpu:cloud:l40s:1x:on-demand"]
    assert (l40s.base_price_per_gpu_hour, l40s.available) == (950_000, True)
    assert l40s.gpu == canonical_gpu("L40S", None).name


def test_offer_ids_are_stable_when_prices_drift() -> None:
    listings, types = load("search.json"), load("types.json")
    drifted_listings, drifted_types = copy.deepcopy(listings), copy.deepcopy(types)
    for listing in drifted_listings["listings"]:
        listing["pricePerHour"] = round(listing["pricePerHour"] * 0.91, 4)
    for gpu_type in drifted_types["types"]:
        gpu_type["pricePerHour"] = round(gpu_type["pricePerHour"] * 1.07, 4)
        if gpu_type["spotPricePerHour"] is not None:
            gpu_type["spotPricePerHour"] = round(gpu_type["spotPricePerHour"] * 1.07, 4)

    def prices(search: Any, gpu_types: Any) -> dict[str, int]:
        page = parse_listings(search, FETCHED_AT).page
        page.extend(parse_gpu_types(gpu_types, FETCHED_AT))
        return {offer.id: offer.base_price_per_gpu_hour for offer in page.offers}

    before, after = prices(listings, types), prices(drifted_listings, drifted_types)

    assert before.keys() == after.keys()
    assert all(before[offer_id] != after[offer_id] for offer_id in before)


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
