"""IC GPU: the adapter's catalog against its simulator over real HTTP.

Parsing IC GPU's recorded tiers is checked with every provider's in `test_parsing.py`.
"""

from __future__ import annotations

import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import Tier
from providers.icgpu.adapter import IcGpuAdapter
from tests.providers.support import by_id

pytestmark = pytest.mark.provider("icgpu", api_key=None)


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
