"""IC GPU: tier parsing on fixtures, and the adapter against its simulator over real HTTP."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, InterruptionSource, Tier
from providers.base import MalformedResponse
from providers.icgpu.adapter import IcGpuAdapter
from providers.icgpu.parse import parse_tiers
from tests.providers.support import by_id, fixture_loader

load = fixture_loader("icgpu")
FETCHED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.provider("icgpu", api_key=None)


# Parsing


def test_a_tier_gives_an_interactive_and_a_batch_offer_per_region() -> None:
    page = parse_tiers(load("tiers"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    assert len(offers) == 8
    interactive = offers["icgpu:dedicated:h100-80gb:eu-west:interactive"]
    batch = offers["icgpu:dedicated:h100-80gb:eu-west:batch"]
    for offer in (interactive, batch):
        assert offer.provider == "icgpu"
        assert offer.gpu == canonical_gpu("H100 80GB", 80).name
        assert offer.vram_gb == 80
        assert offer.gpu_count == 1
        assert offer.region == "eu-west"
        assert offer.instance_type is InstanceType.CONTAINER
        assert offer.available is True
        assert offer.available_count == 4
        assert offer.updated_at == FETCHED_AT
        assert offer.interruption_probability is None
        assert offer.interruption_source is InterruptionSource.NONE
        assert offer.price_per_gpu_hour == 0
    assert interactive.tier is Tier.ON_DEMAND
    assert interactive.base_price_per_gpu_hour == 2_400_000
    assert interactive.ref == {
        "tier": "dedicated",
        "gpu_model": "H100 80GB",
        "region": "eu-west",
        "workload_type": "interactive",
    }
    assert batch.tier is Tier.SPOT
    assert batch.base_price_per_gpu_hour == 1_200_000
    assert batch.ref["workload_type"] == "batch"


def test_a_mig_tier_keeps_the_slice_memory_and_the_card_name() -> None:
    offers = by_id(parse_tiers(load("tiers"), FETCHED_AT).offers)

    for region in ("eu-west", "us-east"):
        slice_offer = offers[f"icgpu:mig:a100-80gb:{region}:interactive"]
        assert slice_offer.vram_gb == 10
        assert slice_offer.gpu == canonical_gpu("A100 80GB").name
        assert slice_offer.gpu_known is True
        assert slice_offer.available_count == 12


def test_a_timesliced_tier_is_marked_shared_and_a_zero_count_unavailable() -> None:
    offers = by_id(parse_tiers(load("tiers"), FETCHED_AT).offers)

    for workload in ("interactive", "batch"):
        shared = offers[f"icgpu:timesliced:l4:eu-central:{workload}"]
        assert shared.ref["shared"] == "true"
        assert shared.vram_gb == 24
        assert shared.available is False
        assert shared.available_count == 0
    assert offers["icgpu:timesliced:l4:eu-central:batch"].base_price_per_gpu_hour == 75_000
    assert "shared" not in offers["icgpu:dedicated:h100-80gb:eu-west:batch"].ref


def test_malformed_tiers_are_skipped_and_reported() -> None:
    page = parse_tiers(load("tiers_malformed"), FETCHED_AT)

    assert {offer.id for offer in page.offers} == {
        "icgpu:dedicated:a100-40gb:us-west:interactive",
        "icgpu:dedicated:a100-40gb:us-west:batch",
    }
    assert len(page.skipped) == 7
    notes = "\n".join(page.skipped)
    for reason in (
        "missing field 'price_per_hour'",
        "not a positive price",
        "'abc'",
        "missing field 'gpu_model'",
        "item 5 is not an object",
        "mig tier without the slice's vram_gb",
        "no regions",
    ):
        assert reason in notes


def test_strings_nulls_and_extra_fields_are_tolerated() -> None:
    page = parse_tiers(load("tiers_tolerant"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    assert set(offers) == {
        "icgpu:dedicated:h200-141gb:us-east:interactive",
        "icgpu:dedicated:h200-141gb:us-east:batch",
        "icgpu:dedicated:l40s:eu-central:interactive",
    }
    h200 = offers["icgpu:dedicated:h200-141gb:us-east:interactive"]
    assert h200.vram_gb == 141
    assert h200.available_count == 3
    assert h200.base_price_per_gpu_hour == 3_950_000
    assert offers["icgpu:dedicated:h200-141gb:us-east:batch"].base_price_per_gpu_hour == 1_975_000
    l40s = offers["icgpu:dedicated:l40s:eu-central:interactive"]
    assert l40s.available is True
    assert l40s.available_count is None
    assert "shared" not in l40s.ref


def test_a_wrong_top_level_shape_fails_the_page() -> None:
    with pytest.raises(MalformedResponse):
        parse_tiers({"data": []}, FETCHED_AT)
    with pytest.raises(MalformedResponse):
        parse_tiers(None, FETCHED_AT)


def test_ids_are_stable_when_prices_drift() -> None:
    payload = load("tiers")
    drifted = copy.deepcopy(payload)
    for tier in drifted["tiers"]:
        for name in ("price_per_hour", "batch_price_per_hour"):
            tier[name] = str(Decimal(tier[name]) * Decimal("1.05"))

    before = by_id(parse_tiers(payload, FETCHED_AT).offers)
    after = by_id(parse_tiers(drifted, FETCHED_AT).offers)

    assert after.keys() == before.keys()
    for offer_id, offer in after.items():
        assert offer.base_price_per_gpu_hour > before[offer_id].base_price_per_gpu_hour


# The adapter against the simulator, over real HTTP


def test_adapter_reads_every_tier_without_a_key(adapter: IcGpuAdapter) -> None:
    page = adapter.list_offers()

    assert page.skipped == []
    assert len(page.offers) >= 30
    offers = by_id(page.offers)
    assert len(offers) == len(page.offers)
    assert {offer.ref["tier"] for offer in page.offers} == {"dedicated", "mig", "timesliced"}
    assert any(not offer.available for offer in page.offers)
    timesliced = [offer for offer in page.offers if offer.ref["tier"] == "timesliced"]
    assert timesliced and all(offer.ref.get("shared") == "true" for offer in timesliced)
    for offer_id, interactive in offers.items():
        if not offer_id.endswith(":interactive"):
            continue
        batch = offers[offer_id.removesuffix("interactive") + "batch"]
        assert interactive.tier is Tier.ON_DEMAND and batch.tier is Tier.SPOT
        assert batch.base_price_per_gpu_hour == pytest.approx(
            interactive.base_price_per_gpu_hour / 2, rel=1e-3
        )
    slices = [offer for offer in page.offers if offer.ref["tier"] == "mig"]
    assert slices
    for offer in slices:
        assert offer.vram_gb < canonical_gpu(offer.ref["gpu_model"]).vram_gb
