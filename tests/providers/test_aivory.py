"""AIVory: offer parsing on fixtures, and the adapter against its simulator over real HTTP."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

import providers.aivory
from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, InterruptionSource, Tier
from providers.aivory.adapter import AivoryAdapter
from providers.aivory.parse import parse_offers
from providers.base import (
    MalformedResponse,
    OfferFilters,
    ProviderRefused,
)
from tests.providers.support import (
    SimulatedProvider,
    by_id,
    fixture_loader,
)

load = fixture_loader("aivory")
FETCHED_AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
API_KEY = "si_test_key_0123"
DOCUMENTED_ID = "aivory:vast-ai:rtx-4090:quebec-ca:spot"
pytestmark = pytest.mark.provider("aivory", api_key=API_KEY)


# Parsing


def test_documented_offer_parses_with_its_documented_id() -> None:
    page = parse_offers(load("offers"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    assert len(offers) == 3
    quebec = offers[DOCUMENTED_ID]
    assert quebec.provider == "aivory"
    assert quebec.gpu == canonical_gpu("RTX 4090", 24).name
    assert quebec.vram_gb == 24
    assert quebec.gpu_count == 1
    assert quebec.base_price_per_gpu_hour == 287_000
    assert quebec.tier is Tier.SPOT
    assert quebec.interruption_probability == pytest.approx(0.02)
    assert quebec.interruption_source is InterruptionSource.PROVIDER
    assert quebec.region == "Quebec, CA"
    assert quebec.instance_type is InstanceType.CONTAINER
    assert quebec.available is True
    assert quebec.available_count is None
    assert quebec.updated_at == FETCHED_AT
    assert quebec.ref == {"gpu_model": "RTX 4090", "provider_id": "vast-ai", "region": "Quebec, CA"}
    assert quebec.price_per_gpu_hour == 0
    assert quebec.effective_price_per_gpu_hour == 0


def test_an_offer_that_is_not_spot_is_on_demand() -> None:
    offers = by_id(parse_offers(load("offers"), FETCHED_AT).offers)

    oregon = offers["aivory:runpod:h100:oregon-us:on-demand"]
    assert oregon.tier is Tier.ON_DEMAND
    assert oregon.interruption_probability == 0.0
    assert oregon.interruption_source is InterruptionSource.PROVIDER
    assert oregon.gpu == canonical_gpu("H100", 80).name
    assert oregon.base_price_per_gpu_hour == 2_490_000


def test_malformed_offers_are_skipped_and_reported() -> None:
    page = parse_offers(load("offers_malformed"), FETCHED_AT)

    assert [offer.id for offer in page.offers] == ["aivory:lambda:l40s:utah-us:spot"]
    assert len(page.skipped) == 7
    notes = "\n".join(page.skipped)
    for reason in (
        "missing field 'price_per_gpu_hour'",
        "not a positive price",
        "'abc'",
        "missing field 'gpu_model'",
        "item 5 is not an object",
        "interruption_probability is not a probability",
        "missing field 'provider_id'",
    ):
        assert reason in notes


def test_strings_nulls_and_extra_fields_are_tolerated() -> None:
    page = parse_offers(load("offers_tolerant"), FETCHED_AT)

    assert page.skipped == []
    offers = by_id(page.offers)
    texas = offers["aivory:vast-ai:rtx-4090:texas-us:spot"]
    assert texas.vram_gb == 24
    assert texas.base_price_per_gpu_hour == 290_000
    assert texas.interruption_probability == pytest.approx(0.05)
    assert texas.tier is Tier.SPOT
    iceland = offers["aivory:runpod:rtx-a6000:iceland-is:spot"]
    assert iceland.interruption_probability is None
    assert iceland.interruption_source is InterruptionSource.NONE
    assert iceland.available is True
    assert iceland.base_price_per_gpu_hour == 490_000


def test_a_wrong_top_level_shape_fails_the_page() -> None:
    with pytest.raises(MalformedResponse):
        parse_offers({"object": "list", "data": {"gpu_model": "H100"}}, FETCHED_AT)
    with pytest.raises(MalformedResponse):
        parse_offers([], FETCHED_AT)


def test_ids_are_stable_when_prices_drift() -> None:
    payload = load("offers")
    drifted = copy.deepcopy(payload)
    for item in drifted["data"]:
        item["price_per_gpu_hour"] = str(Decimal(item["price_per_gpu_hour"]) * Decimal("0.93"))

    before = by_id(parse_offers(payload, FETCHED_AT).offers)
    after = by_id(parse_offers(drifted, FETCHED_AT).offers)

    assert after.keys() == before.keys()
    for offer_id, offer in after.items():
        assert offer.base_price_per_gpu_hour < before[offer_id].base_price_per_gpu_hour


# The adapter against the simulator, over real HTTP


def test_adapter_reads_the_whole_catalog(adapter: AivoryAdapter, sim: Any) -> None:
    page = adapter.list_offers()

    assert page.skipped == []
    assert len(page.offers) >= 30
    offers = by_id(page.offers)
    assert len(offers) == len(page.offers)
    assert DOCUMENTED_ID in offers
    assert {offer.tier for offer in page.offers} == {Tier.SPOT, Tier.ON_DEMAND}
    assert all(o.interruption_source is InterruptionSource.PROVIDER for o in page.offers)
    assert any(not offer.available for offer in page.offers)
    assert len({offer.region for offer in page.offers}) >= 4
    assert sim.last_query == {}


def test_filters_are_pushed_down_and_narrow_the_answer(adapter: AivoryAdapter, sim: Any) -> None:
    everything = adapter.list_offers().offers
    rtx_4090 = canonical_gpu("RTX 4090").name

    by_gpu = adapter.list_offers(OfferFilters(gpu="RTX 4090")).offers
    assert sim.last_query == {"gpu_model": "RTX 4090"}
    assert by_gpu and len(by_gpu) < len(everything)
    assert {offer.gpu for offer in by_gpu} == {rtx_4090}

    by_vram = adapter.list_offers(OfferFilters(min_vram_gb=48)).offers
    assert sim.last_query == {"min_vram": "48"}
    assert by_vram and len(by_vram) < len(everything)
    assert all(offer.vram_gb >= 48 for offer in by_vram)

    by_price = adapter.list_offers(OfferFilters(max_price_per_gpu_hour=500_000)).offers
    assert sim.last_query == {"max_price": "0.500000"}
    assert by_price and len(by_price) < len(everything)
    assert all(offer.base_price_per_gpu_hour <= 500_000 for offer in by_price)

    stacked = adapter.list_offers(
        OfferFilters(gpu="RTX 4090", max_price_per_gpu_hour=500_000)
    ).offers
    assert {o.id for o in stacked} == {o.id for o in by_gpu} & {o.id for o in by_price}


def test_a_canonical_gpu_name_is_pushed_down_as_its_family(
    adapter: AivoryAdapter, sim: Any
) -> None:
    h100 = canonical_gpu("H100 SXM")

    offers = adapter.list_offers(OfferFilters(gpu=h100.name)).offers

    assert sim.last_query == {"gpu_model": h100.family}
    assert offers
    assert {offer.gpu for offer in offers} == {h100.name}


def test_the_demo_key_is_one_the_simulator_accepts(provider: SimulatedProvider) -> None:
    demo = provider.adapter(api_key=providers.aivory.SPEC.demo_api_key)
    try:
        assert len(demo.list_offers().offers) >= 30
    finally:
        demo.close()


@pytest.mark.parametrize("key", [None, "sk_not_an_aivory_key"])
def test_a_missing_or_wrong_key_is_refused(provider: SimulatedProvider, key: str | None) -> None:
    keyless = provider.adapter(api_key=key)
    try:
        with pytest.raises(ProviderRefused) as refused:
            keyless.list_offers()
    finally:
        keyless.close()
    assert refused.value.status == 401
    assert refused.value.reason == "unauthorized"
    assert key is None or key not in str(refused.value)
