"""AIVory: the adapter's catalog against its simulator over real HTTP.

Parsing AIVory's recorded offers is checked with every provider's in `test_parsing.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

import providers.aivory
from pricing.gpus import canonical_gpu
from pricing.offer import InterruptionSource, Tier
from providers.aivory.adapter import AivoryAdapter
from providers.base import OfferFilters, ProviderRefused
from tests.providers.support import SimulatedProvider, by_id

API_KEY = "si_test_key_0123"
DOCUMENTED_ID = "aivory:vast-ai:rtx-4090:quebec-ca:spot"
pytestmark = pytest.mark.provider("aivory", api_key=API_KEY)


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
