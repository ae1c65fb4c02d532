"""EmpirioLabs: catalog parsing on fixtures, and the adapter against its simulator over HTTP."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, InterruptionSource, Tier
from providers.base import MalformedResponse
from providers.empiriolabs.adapter import CATALOG_PATH, EmpirioLabsAdapter
from providers.empiriolabs.parse import GPU_COUNTS, parse_catalog
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, fixture_loader

load = fixture_loader("empiriolabs")
FETCHED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
API_KEY = "el-test-key-do-not-leak"
pytestmark = pytest.mark.provider("empiriolabs", api_key=API_KEY)


# --- parsing -------------------------------------------------------------------------------


def test_documented_catalog_expands_items_by_region_and_gpu_count() -> None:
    page = parse_catalog(load("catalog.json"), FETCHED_AT)

    assert page.skipped == []
    by_id = {offer.id: offer for offer in page.offers}
    assert sorted(by_id) == sorted(
        [f"empiriolabs:rtx-4090:{region}:{n}x" for region in ("us", "eu") for n in GPU_COUNTS]
        + [f"empiriolabs:a100-80gb:us:{n}x" for n in (1, 2, 4)]
        + [f"empiriolabs:h100-sxm:eu:{n}x" for n in GPU_COUNTS]
    )
    offer = by_id["empiriolabs:rtx-4090:eu:8x"]
    expected_gpu = canonical_gpu("RTX 4090", 24)
    assert (offer.gpu, offer.vram_gb, offer.gpu_known) == (
        expected_gpu.name,
        expected_gpu.vram_gb,
        expected_gpu.known,
    )
    assert offer.provider == "empiriolabs"
    assert offer.gpu_count == 8
    assert offer.base_price_per_gpu_hour == 800_000
    assert offer.tier is Tier.ON_DEMAND
    assert offer.region == "EU"
    assert offer.instance_type is InstanceType.CONTAINER
    assert offer.available is True
    assert offer.available_count == 21
    assert offer.updated_at == FETCHED_AT
    assert offer.interruption_probability is None
    assert offer.interruption_source is InterruptionSource.NONE
    assert offer.ref == {"gpu_slug": "rtx-4090", "gpu_count": "8"}
    assert offer.price_per_gpu_hour == 0
    assert offer.effective_price_per_gpu_hour == 0


def test_availability_follows_the_item_and_the_free_gpu_count() -> None:
    by_id = {offer.id: offer for offer in parse_catalog(load("catalog.json"), FETCHED_AT).offers}

    # Three A100s are free: one and two fit, four do not.
    assert by_id["empiriolabs:a100-80gb:us:2x"].available is True
    assert by_id["empiriolabs:a100-80gb:us:4x"].available is False
    # A sold-out item stays in the catalog as unavailable offers.
    sold_out = [offer for offer in by_id.values() if offer.ref["gpu_slug"] == "h100-sxm"]
    assert len(sold_out) == len(GPU_COUNTS)
    assert all(not offer.available and offer.available_count == 0 for offer in sold_out)


def test_malformed_items_are_skipped_and_reported() -> None:
    page = parse_catalog(load("catalog_malformed.json"), FETCHED_AT)

    assert [offer.id for offer in page.offers] == [
        "empiriolabs:rtx-4090:us:1x",
        "empiriolabs:h100-sxm:eu:1x",
    ]
    assert len(page.skipped) == 5
    reasons = "\n".join(page.skipped)
    assert "item 1: missing field 'price_hourly'" in reasons
    assert "item 2: price_hourly is not a positive price" in reasons
    assert "item 3: price_hourly is not a price: 'abc'" in reasons
    assert "item 4: missing field 'name'" in reasons
    assert "item 5 is not an object" in reasons


def test_extra_fields_string_numbers_and_nulls_are_tolerated() -> None:
    page = parse_catalog(load("catalog_loose.json"), FETCHED_AT)

    assert page.skipped == []
    by_id = {offer.id: offer for offer in page.offers}
    # Numbers as strings; a region listed twice gives its offers once; max_gpus "2" bounds counts.
    assert sorted(by_id) == [
        "empiriolabs:l40s:global:1x",
        "empiriolabs:rtx-4090:eu:1x",
        "empiriolabs:rtx-4090:eu:2x",
        "empiriolabs:rtx-4090:us:1x",
        "empiriolabs:rtx-4090:us:2x",
    ]
    rtx = by_id["empiriolabs:rtx-4090:us:2x"]
    assert rtx.base_price_per_gpu_hour == 550_000
    assert rtx.vram_gb == canonical_gpu("RTX 4090", 24).vram_gb
    assert (rtx.available, rtx.available_count) == (True, 7)
    # Nulls for optional fields: defaults, not a skip.
    l40s = by_id["empiriolabs:l40s:global:1x"]
    assert l40s.base_price_per_gpu_hour == 990_000
    assert l40s.gpu == canonical_gpu("L40S", None).name
    assert (l40s.available, l40s.available_count, l40s.region) == (True, None, "Global")


def test_offer_ids_are_stable_when_prices_drift() -> None:
    payload = load("catalog.json")
    drifted = copy.deepcopy(payload)
    for item in drifted["data"]:
        item["price_hourly"] = round(item["price_hourly"] * 1.13, 4)

    before = {o.id: o.base_price_per_gpu_hour for o in parse_catalog(payload, FETCHED_AT).offers}
    after = {o.id: o.base_price_per_gpu_hour for o in parse_catalog(drifted, FETCHED_AT).offers}

    assert before.keys() == after.keys()
    assert all(after[offer_id] > before[offer_id] for offer_id in before)


@pytest.mark.parametrize("payload", [[], {"object": "list"}, {"data": {"slug": "rtx-4090"}}, None])
def test_a_response_that_is_not_a_catalog_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_catalog(payload, FETCHED_AT)


# --- the adapter against the simulator, over HTTP ----------------------------------------------


def expected_offer_count(sim: Any) -> int:
    return sum(
        len(item.regions) * sum(1 for n in GPU_COUNTS if n <= item.max_gpus)
        for item in sim.items.values()
    )


def test_adapter_reads_the_whole_simulated_catalog(adapter: EmpirioLabsAdapter, sim: Any) -> None:
    page = adapter.list_offers()

    assert page.skipped == []
    assert len(page.offers) == expected_offer_count(sim) >= 30
    assert len({offer.id for offer in page.offers}) == len(page.offers)
    assert {offer.ref["gpu_slug"] for offer in page.offers} == set(sim.items)
    assert all(offer.gpu_known for offer in page.offers)
    assert any(not offer.available for offer in page.offers)
    assert len({offer.region for offer in page.offers}) >= 3
    for offer in page.offers:
        item = sim.items[offer.ref["gpu_slug"]]
        assert offer.base_price_per_gpu_hour == round(item.price_hourly * 1_000_000)
        assert offer.gpu == canonical_gpu(item.name, item.vram_gb).name
        assert offer.region in item.regions
    assert sim.last_authorization == f"Bearer {API_KEY}"


def test_public_catalog_needs_no_key(provider: SimulatedProvider, sim: Any) -> None:
    adapter = provider.adapter(api_key=None)
    try:
        assert len(adapter.list_offers().offers) == expected_offer_count(sim)
    finally:
        adapter.close()
    assert sim.last_authorization is None


def test_a_retried_fault_never_reaches_the_catalog_route(
    adapter: EmpirioLabsAdapter, sim: Any, knobs: SimulatorKnobs
) -> None:
    """Faults are answered in front of the route: only the successful attempt is served."""
    served_before = sim.requests[CATALOG_PATH]
    knobs.fail_next(2, "5xx")

    adapter.list_offers()

    assert not knobs.forced
    assert sim.requests[CATALOG_PATH] == served_before + 1


def test_drifted_prices_are_the_ones_the_simulator_holds(
    adapter: EmpirioLabsAdapter, sim: Any, knobs: SimulatorKnobs
) -> None:
    knobs.price_drift = 0.1

    adapter.list_offers()
    offers = adapter.list_offers().offers

    # The walk is the simulator's state: it holds the prices it last served.
    for offer in offers:
        item = sim.items[offer.ref["gpu_slug"]]
        assert offer.base_price_per_gpu_hour == round(item.price_hourly * 1_000_000)


def test_simulator_serves_one_catalog_item_by_slug(provider: SimulatedProvider, sim: Any) -> None:
    known = httpx.get(f"{provider.url}{CATALOG_PATH}/rtx-4090")
    unknown = httpx.get(f"{provider.url}{CATALOG_PATH}/no-such-gpu")

    assert known.status_code == 200
    assert known.json() == sim.items["rtx-4090"].to_json()
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found"
