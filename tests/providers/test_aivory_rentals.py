"""AIVory rentals: the adapter against its simulator over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pricing.offer import Offer, Tier
from providers.aivory.adapter import AivoryAdapter
from providers.aivory.simulator import AivoryState, create_simulator
from providers.base import ProviderRefused, ProviderUnavailable
from providers.rental import (
    Instance,
    InstanceStatus,
    NotSupported,
    Scope,
    Upstream,
    Workload,
    WorkloadMode,
    scope_of,
)
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread
from tests.providers.support import fast_config

API_KEY = "si_rental_key_do_not_leak"
MODEL = Workload(mode=WorkloadMode.MODEL, model="meta-llama/Llama-3.3-70B-Instruct")
POLL_ATTEMPTS = 200
POLL_PAUSE = 0.02


@pytest.fixture
def server() -> Iterator[RunningServer]:
    """A fresh simulator per test, so capacity and rentals start from the seed."""
    running = serve_in_thread(create_simulator(SimulatorKnobs(seed=11, provision_seconds=0.2)))
    yield running
    running.stop()


@pytest.fixture
def knobs(server: RunningServer) -> SimulatorKnobs:
    return server.app.state.knobs


@pytest.fixture
def sim(server: RunningServer) -> AivoryState:
    return server.app.state.sim


def make_adapter(server: RunningServer, **overrides: Any) -> AivoryAdapter:
    return AivoryAdapter(fast_config(server.url, API_KEY, **overrides))


@pytest.fixture
def adapter(server: RunningServer) -> Iterator[AivoryAdapter]:
    made = make_adapter(server)
    yield made
    made.close()


def offer_of(adapter: AivoryAdapter, tier: Tier = Tier.SPOT) -> Offer:
    for offer in adapter.list_offers().offers:
        if offer.tier is tier and offer.available:
            return offer
    raise AssertionError(f"no available {tier} offer")


def listed(adapter: AivoryAdapter, offer: Offer) -> Offer:
    """`offer` as the catalog lists it now."""
    return next(o for o in adapter.list_offers().offers if o.id == offer.id)


def wait_for(adapter: AivoryAdapter, handle: str, status: InstanceStatus) -> Instance:
    instance = adapter.status(handle)
    for _ in range(POLL_ATTEMPTS):
        if instance.status is status:
            return instance
        time.sleep(POLL_PAUSE)
        instance = adapter.status(handle)
    raise AssertionError(f"{handle} stayed {instance.status}, never {status}")


def sim_rentals(server: RunningServer) -> list[dict[str, Any]]:
    return httpx.get(f"{server.url}/_sim/instances").json()["instances"]


# The lifecycle


def test_a_rental_provisions_runs_serves_an_endpoint_and_terminates(
    adapter: AivoryAdapter, knobs: SimulatorKnobs, server: RunningServer
) -> None:
    knobs.provision_seconds = 60
    offer = offer_of(adapter)

    created = adapter.provision(offer, MODEL, "rnt_lifecycle")

    assert created.status is InstanceStatus.PROVISIONING
    assert created.handle.startswith("ar_")
    assert created.rental_id == "rnt_lifecycle"
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING
    with pytest.raises(ProviderRefused) as early:
        adapter.upstream(created.handle)
    assert early.value.reason == "conflict"
    [rented] = sim_rentals(server)
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
        f"{server.url}/v1/gpu/rentals/{created.handle}/endpoint",
        {"Authorization": f"Bearer {API_KEY}"},
    )

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)

    assert ended.status is InstanceStatus.TERMINATED
    assert again.status is InstanceStatus.TERMINATED
    assert ended.ended_at is not None
    assert adapter.status(created.handle).status is InstanceStatus.TERMINATED
    [final] = sim_rentals(server)
    assert final["status"] == "terminated" and "cost" in final


def test_an_on_demand_offer_rents_its_on_demand_twin(
    adapter: AivoryAdapter, server: RunningServer
) -> None:
    offer = offer_of(adapter, Tier.ON_DEMAND)

    adapter.provision(offer, Workload(image="vllm/vllm-openai:latest"), "rnt_od")

    [rented] = sim_rentals(server)
    assert rented["spot"] is False
    assert rented["docker_image"] == "vllm/vllm-openai:latest"


def test_aivory_cannot_stop_start_or_list(adapter: AivoryAdapter) -> None:
    created = adapter.provision(offer_of(adapter), MODEL, "rnt_nostop")

    for operation in (adapter.stop, adapter.start):
        with pytest.raises(NotSupported):
            operation(created.handle)
    with pytest.raises(NotSupported):
        adapter.list_instances()
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING


# Spot interruption


def test_a_spot_interruption_is_interrupted_with_aivorys_reason(
    adapter: AivoryAdapter, server: RunningServer, sim: AivoryState
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

    answered = httpx.post(f"{server.url}/_sim/instances/{created.handle}/interrupt")
    lost = adapter.status(created.handle)

    assert answered.status_code == 200
    assert lost.status is InstanceStatus.INTERRUPTED
    assert lost.reason == "interrupted"
    assert lost.ended_at is not None
    assert adapter.terminate(created.handle).status is InstanceStatus.INTERRUPTED
    assert seeded.free == free


def test_an_on_demand_rental_cannot_be_interrupted(
    adapter: AivoryAdapter, server: RunningServer
) -> None:
    created = adapter.provision(offer_of(adapter, Tier.ON_DEMAND), MODEL, "rnt_od")

    answered = httpx.post(f"{server.url}/_sim/instances/{created.handle}/interrupt")

    assert answered.status_code == 409
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING


# Refusals


@pytest.mark.parametrize(
    ("kind", "reason", "scope"),
    [
        ("capacity", "no_capacity", Scope.REGION),
        ("payment", "insufficient_funds", Scope.PROVIDER),
        ("conflict", "conflict", Scope.OFFER),
        ("gone", "offer_gone", Scope.OFFER),
    ],
)
def test_each_refusal_has_its_reason_and_scope(
    adapter: AivoryAdapter,
    knobs: SimulatorKnobs,
    server: RunningServer,
    kind: Any,
    reason: str,
    scope: Scope,
) -> None:
    offer = offer_of(adapter)
    knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, MODEL, "rnt_refused")

    assert refused.value.reason == reason
    assert scope_of(refused.value) is scope
    assert sim_rentals(server) == []
    assert adapter.provision(offer, MODEL, "rnt_after").status is InstanceStatus.PROVISIONING


def test_exhausted_capacity_is_no_capacity_until_a_rental_ends(adapter: AivoryAdapter) -> None:
    offer = offer_of(adapter)
    handles = []
    for n in range(POLL_ATTEMPTS):
        try:
            handles.append(adapter.provision(offer, MODEL, f"rnt_fill_{n}").handle)
        except ProviderRefused as refused:
            assert refused.reason == "no_capacity"
            assert scope_of(refused) is Scope.REGION
            break
    else:
        raise AssertionError("capacity never ran out")

    assert handles
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


def test_an_unknown_rental_is_not_found_and_terminating_it_is_harmless(
    adapter: AivoryAdapter,
) -> None:
    with pytest.raises(ProviderRefused) as missing:
        adapter.status("ar_missing")

    assert missing.value.reason == "not_found"
    assert adapter.terminate("ar_missing").status is InstanceStatus.TERMINATED


@pytest.mark.parametrize("key", [None, "sk_not_an_aivory_key"])
def test_a_wrong_key_is_unauthorized_and_never_repeated(
    server: RunningServer, adapter: AivoryAdapter, key: str | None
) -> None:
    offer = offer_of(adapter)
    keyless = make_adapter(server, api_key=key)
    try:
        with pytest.raises(ProviderRefused) as refused:
            keyless.provision(offer, MODEL, "rnt_nokey")
    finally:
        keyless.close()

    assert (refused.value.status, refused.value.reason) == (401, "unauthorized")
    assert scope_of(refused.value) is Scope.PROVIDER
    assert key is None or key not in str(refused.value)


def test_a_rent_is_sent_once_even_when_the_answer_fails(
    adapter: AivoryAdapter, knobs: SimulatorKnobs, server: RunningServer
) -> None:
    """A retry would have reached the simulator and rented; the one attempt did not."""
    offer = offer_of(adapter)
    knobs.fail_next(1, "5xx")

    with pytest.raises(ProviderUnavailable):
        adapter.provision(offer, MODEL, "rnt_once")

    assert not knobs.forced
    assert sim_rentals(server) == []
