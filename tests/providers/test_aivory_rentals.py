"""AIVory rentals: what is particular to AIVory, against its simulator over real HTTP.

The lifecycle, refusals, unknown rentals, keys, the single rent attempt and interruption rules
every provider shares are in `test_rental_conformance.py`; here are AIVory's own: the rental record
its simulator keeps, the endpoint it serves, the on-demand twin and how its capacity runs out.
"""

from __future__ import annotations

from typing import Any

import pytest

from pricing.offer import Offer, Tier
from providers.aivory.adapter import AivoryAdapter
from providers.base import ProviderRefused
from providers.rental import InstanceStatus, Upstream, Workload, WorkloadMode
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, fill, wait_for

API_KEY = "si_rental_key_do_not_leak"
MODEL = Workload(mode=WorkloadMode.MODEL, model="meta-llama/Llama-3.3-70B-Instruct")
pytestmark = pytest.mark.provider("aivory", api_key=API_KEY)


def offer_of(adapter: AivoryAdapter, tier: Tier = Tier.SPOT) -> Offer:
    for offer in adapter.list_offers().offers:
        if offer.tier is tier and offer.available:
            return offer
    raise AssertionError(f"no available {tier} offer")


def listed(adapter: AivoryAdapter, offer: Offer) -> Offer:
    """`offer` as the catalog lists it now."""
    return next(o for o in adapter.list_offers().offers if o.id == offer.id)


# The lifecycle


def test_a_rental_is_recorded_as_rented_serves_an_endpoint_once_running_and_is_costed(
    adapter: AivoryAdapter, knobs: SimulatorKnobs, provider: SimulatedProvider
) -> None:
    knobs.provision_seconds = 60
    offer = offer_of(adapter)

    created = adapter.provision(offer, MODEL, "rnt_lifecycle")

    with pytest.raises(ProviderRefused) as early:
        adapter.upstream(created.handle)
    assert early.value.reason == "conflict"
    [rented] = provider.instances()
    assert (rented["gpu_model"], rented["provider_id"], rented["region"], rented["spot"]) == (
        offer.ref["gpu_model"],
        offer.ref["provider_id"],
        offer.ref["region"],
        True,
    )
    assert rented["model_id"] == MODEL.model
    assert rented["hold"] and rented["price_per_gpu_hour"]

    knobs.provision_seconds = 0.2
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    assert adapter.upstream(created.handle) == Upstream(
        f"{provider.url}/v1/gpu/rentals/{created.handle}/endpoint",
        {"Authorization": f"Bearer {API_KEY}"},
    )

    assert adapter.terminate(created.handle).status is InstanceStatus.TERMINATED
    [final] = provider.instances()
    assert final["status"] == "terminated" and "cost" in final


def test_an_on_demand_offer_rents_its_on_demand_twin(
    adapter: AivoryAdapter, provider: SimulatedProvider
) -> None:
    offer = offer_of(adapter, Tier.ON_DEMAND)

    adapter.provision(offer, Workload(image="vllm/vllm-openai:latest"), "rnt_od")

    [rented] = provider.instances()
    assert rented["spot"] is False
    assert rented["docker_image"] == "vllm/vllm-openai:latest"


# Spot interruption


def test_a_spot_rental_holds_its_place_until_interrupted(
    adapter: AivoryAdapter, provider: SimulatedProvider, sim: Any
) -> None:
    offer = offer_of(adapter)
    [seeded] = [
        o
        for o in sim.offers
        if (o.gpu_model, o.provider_id, o.region, o.spot)
        == (offer.ref["gpu_model"], offer.ref["provider_id"], offer.ref["region"], True)
    ]
    free = seeded.free
    created = adapter.provision(offer, MODEL, "rnt_spot")
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    assert seeded.free == free - 1

    assert provider.interrupt(created.handle).status_code == 200
    assert adapter.status(created.handle).status is InstanceStatus.INTERRUPTED
    assert seeded.free == free


# Refusals


def test_exhausted_capacity_is_no_capacity_until_a_rental_ends(adapter: AivoryAdapter) -> None:
    offer = offer_of(adapter)
    handles = fill(adapter, offer, MODEL)

    assert listed(adapter, offer).available is False
    adapter.terminate(handles[0])
    assert listed(adapter, offer).available is True
    assert adapter.provision(offer, MODEL, "rnt_freed").status is InstanceStatus.PROVISIONING


def test_an_offer_no_longer_listed_is_gone(adapter: AivoryAdapter) -> None:
    offer = offer_of(adapter)
    offer.ref["region"] = "Atlantis, XX"

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, MODEL, "rnt_gone")

    assert (refused.value.reason, refused.value.status) == ("offer_gone", 409)
