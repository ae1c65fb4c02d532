"""Fluence: where its skip notes point, and the adapter against its simulator over real HTTP.

What Fluence's recorded plans parse to is checked with every provider's in `test_parsing.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pricing.gpus import canonical_gpu
from pricing.offer import InstanceType, Tier
from providers.fluence.adapter import FluenceAdapter
from providers.fluence.parse import parse_container_plans, parse_machine_plans
from tests.providers.support import SimulatedProvider, by_id, fixture_loader

load = fixture_loader("fluence")
API_KEY = "fl_test_key"
pytestmark = pytest.mark.provider("fluence", api_key=API_KEY)


def test_skip_notes_name_the_family_and_the_machine_option_group() -> None:
    """A plan listing nests options in groups: a note says where the skipped item sat."""
    at = datetime(2026, 11, 20, tzinfo=UTC)
    containers = parse_container_plans(load("container_plans_malformed"), at)
    machines = parse_machine_plans(load("vm_plans_malformed"), InstanceType.VM, at)

    assert containers.skipped
    assert all(note.startswith("container: ") for note in containers.skipped)
    group = [n for n in machines.skipped if n.startswith("vm NVIDIA H100 80GB HBM3 x1: ")]
    assert len(group) == 4
    assert "vm: item 2 is not an object" in machines.skipped


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
