"""Fluence: plan parsing on fixtures, and the adapter against its simulator over real HTTP."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, InterruptionSource, Tier
from providers.base import MalformedResponse
from providers.fluence.adapter import FluenceAdapter
from providers.fluence.parse import parse_container_plans, parse_machine_plans
from tests.providers.support import (
    SimulatedProvider,
    by_id,
    fixture_loader,
)

load = fixture_loader("fluence")
FETCHED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
API_KEY = "fl_test_key"
pytestmark = pytest.mark.provider("fluence", api_key=API_KEY)


# Parsing


def test_container_plan_gives_one_offer_per_location() -> None:
    page = parse_container_plans(load("container_plans"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    assert len(offers) == 4
    paris = offers["fluence:plan:plan-h100x1:loc-fr1"]
    assert paris.provider == "fluence"
    assert paris.gpu == canonical_gpu("NVIDIA H100 80GB HBM3", 80).name
    assert paris.vram_gb == 80
    assert paris.gpu_known is True
    assert paris.gpu_count == 1
    assert paris.base_price_per_gpu_hour == 2_150_000
    assert paris.tier is Tier.ON_DEMAND
    assert paris.instance_type is InstanceType.CONTAINER
    assert paris.region == "Paris, FR"
    assert paris.available is True
    assert paris.available_count is None
    assert paris.updated_at == FETCHED_AT
    assert paris.interruption_probability is None
    assert paris.interruption_source is InterruptionSource.NONE
    assert paris.ref == {"plan_id": "plan_h100x1", "location_id": "loc_fr1"}
    assert paris.price_per_gpu_hour == 0
    assert paris.effective_price_per_gpu_hour == 0
    assert offers["fluence:plan:plan-h100x1:loc-us1"].region == "Ashburn, US"


def test_container_plan_price_is_divided_per_gpu() -> None:
    offers = by_id(parse_container_plans(load("container_plans"), FETCHED_AT).offers)

    eight = offers["fluence:plan:plan-a100x8:loc-de1"]
    assert eight.gpu_count == 8
    assert eight.base_price_per_gpu_hour == 1_800_000
    three = offers["fluence:plan:plan-4090x3:loc-pl1"]
    assert three.gpu_count == 3
    assert three.base_price_per_gpu_hour == 333_333
    assert three.available is False


def test_vm_and_baremetal_options_give_one_offer_each() -> None:
    vms = parse_machine_plans(load("vm_plans"), InstanceType.VM, FETCHED_AT)
    metal = parse_machine_plans(load("baremetal_plans"), InstanceType.BAREMETAL, FETCHED_AT)

    assert vms.skipped == [] and metal.skipped == []
    offers = by_id(vms.offers)
    assert {offer_id: offer.base_price_per_gpu_hour for offer_id, offer in offers.items()} == {
        "fluence:vm:opt-a100x8-fi": 1_800_000,
        "fluence:vm:opt-a100x8-us": 1_500_000,
        "fluence:vm:opt-a100x1-de": 1_950_000,
        "fluence:vm:opt-l40sx2-nl": 950_000,
    }
    helsinki = offers["fluence:vm:opt-a100x8-fi"]
    assert helsinki.gpu_count == 8
    assert helsinki.gpu == canonical_gpu("NVIDIA A100 80GB", 80).name
    assert helsinki.instance_type is InstanceType.VM
    assert helsinki.region == "Helsinki, FI"
    assert helsinki.ref == {
        "option_id": "opt_a100x8_fi",
        "os_image": "ubuntu-22.04",
        "location_id": "loc_fi1",
    }
    assert offers["fluence:vm:opt-l40sx2-nl"].gpu_count == 2
    [bare] = metal.offers
    assert bare.id == "fluence:baremetal:opt-h100x8-bm"
    assert bare.instance_type is InstanceType.BAREMETAL
    assert bare.base_price_per_gpu_hour == 2_700_000
    assert bare.tier is Tier.ON_DEMAND


def test_malformed_plans_are_skipped_and_reported() -> None:
    page = parse_container_plans(load("container_plans_malformed"), FETCHED_AT)

    assert [offer.ref["plan_id"] for offer in page.offers] == ["plan_good"]
    assert len(page.skipped) == 7
    notes = "\n".join(page.skipped)
    for reason in (
        "missing field 'price'",
        "not a positive price",
        "'abc'",
        "missing field 'gpu.model'",
        "item 5 is not an object",
        "EUR",
        "gpu.count is not positive",
    ):
        assert reason in notes
    assert all(note.startswith("container: ") for note in page.skipped)


def test_malformed_machine_options_are_skipped_where_they_sit() -> None:
    page = parse_machine_plans(load("vm_plans_malformed"), InstanceType.VM, FETCHED_AT)

    assert [offer.id for offer in page.offers] == ["fluence:vm:opt-good"]
    assert len(page.skipped) == 7
    option_notes = [n for n in page.skipped if n.startswith("vm NVIDIA H100 80GB HBM3 x1: ")]
    assert len(option_notes) == 4
    assert any("price_per_hour" in note for note in option_notes)
    assert any("os_options" in note for note in option_notes)
    assert any("not an object" in note for note in option_notes)
    assert any("gpu_count is not positive" in note for note in page.skipped)
    assert any("missing field 'gpu_model'" in note for note in page.skipped)
    assert "vm: item 2 is not an object" in page.skipped


def test_strings_nulls_and_extra_fields_are_tolerated() -> None:
    page = parse_container_plans(load("container_plans_tolerant"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    amsterdam = offers["fluence:plan:plan-l40sx2:loc-nl1"]
    assert amsterdam.gpu_count == 2
    assert amsterdam.vram_gb == 48
    assert amsterdam.base_price_per_gpu_hour == 850_000
    assert amsterdam.available is True
    assert amsterdam.region == "NL"
    assert offers["fluence:plan:plan-l40sx2:loc-xx9"].region == "loc_xx9"


def test_a_wrong_top_level_shape_fails_the_page() -> None:
    with pytest.raises(MalformedResponse):
        parse_container_plans({"plans": []}, FETCHED_AT)
    with pytest.raises(MalformedResponse):
        parse_machine_plans("maintenance", InstanceType.BAREMETAL, FETCHED_AT)


def _scale_prices(payload: Any, factor: Decimal) -> Any:
    """A copy of a plan listing with every amount multiplied by `factor`."""
    drifted = copy.deepcopy(payload)
    for item in drifted:
        if "price" in item:
            item["price"]["amount"] = str(Decimal(item["price"]["amount"]) * factor)
        for bucket in item.get("by_count", []):
            for option in bucket["options"]:
                option["price_per_hour"] = str(Decimal(option["price_per_hour"]) * factor)
    return drifted


def test_ids_are_stable_when_prices_drift() -> None:
    for name, parse in (
        ("container_plans", lambda p: parse_container_plans(p, FETCHED_AT)),
        ("vm_plans", lambda p: parse_machine_plans(p, InstanceType.VM, FETCHED_AT)),
    ):
        before = by_id(parse(load(name)).offers)
        after = by_id(parse(_scale_prices(load(name), Decimal("1.07"))).offers)
        assert after.keys() == before.keys()
        for offer_id, offer in after.items():
            assert offer.base_price_per_gpu_hour > before[offer_id].base_price_per_gpu_hour


# The adapter against the simulator, over real HTTP


def test_adapter_reads_all_three_plan_families(
    adapter: FluenceAdapter, provider: SimulatedProvider
) -> None:
    page = adapter.list_offers()

    assert page.skipped == []
    assert len(page.offers) >= 30
    assert len(by_id(page.offers)) == len(page.offers)
    families = {offer.instance_type for offer in page.offers}
    assert families == {InstanceType.CONTAINER, InstanceType.VM, InstanceType.BAREMETAL}
    assert all(offer.tier is Tier.ON_DEMAND for offer in page.offers)
    assert any(not offer.available for offer in page.offers)
    assert len({offer.region for offer in page.offers}) >= 4
    # Seeded per-GPU prices stay in their per-GPU range once multi-GPU plans are divided.
    h100 = canonical_gpu("NVIDIA H100 80GB HBM3", 80).name
    multi_gpu_h100 = [o for o in page.offers if o.gpu == h100 and o.gpu_count == 8]
    assert multi_gpu_h100
    assert all(1_800_000 <= o.base_price_per_gpu_hour <= 3_500_000 for o in multi_gpu_h100)
    state = provider.sim
    assert state.last_authorization == f"Bearer {API_KEY}"
