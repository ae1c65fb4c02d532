"""EmpirioLabs: the adapter's catalog against its simulator over HTTP.

Parsing EmpirioLabs' recorded catalog is checked with every provider's in `test_parsing.py`.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pricing.gpus import canonical_gpu
from providers.empiriolabs.adapter import CATALOG_PATH, EmpirioLabsAdapter
from providers.empiriolabs.parse import GPU_COUNTS
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider

API_KEY = "el-test-key-do-not-leak"
pytestmark = pytest.mark.provider("empiriolabs", api_key=API_KEY)


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
