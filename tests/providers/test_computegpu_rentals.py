"""ComputeGPU rentals: the adapter against its simulator over real HTTP.

GPU cloud pods and what both families share; marketplace listings are in
`test_computegpu_listings.py`, which reuses the fixtures and helpers defined here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pricing.offer import Offer, Tier
from providers.base import ProviderRefused
from providers.computegpu.adapter import PODS_PATH, ComputeGpuAdapter
from providers.computegpu.sim_rentals import SimRefusal
from providers.computegpu.simulator import ComputeGpuState, create_simulator
from providers.computegpu.workload import DEPLOY_PATH
from providers.rental import (
    Instance,
    InstanceStatus,
    Scope,
    UnsupportedWorkload,
    Workload,
    WorkloadMode,
    scope_of,
)
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread
from tests.providers.support import fast_config

API_KEY = "gpu_test_key_do_not_leak"
POLL_ATTEMPTS = 200
POLL_PAUSE = 0.02


@pytest.fixture(scope="module")
def knobs() -> SimulatorKnobs:
    return SimulatorKnobs(seed=11, provision_seconds=0.2)


@pytest.fixture(scope="module")
def server(knobs: SimulatorKnobs) -> Iterator[RunningServer]:
    running = serve_in_thread(create_simulator(knobs))
    yield running
    running.stop()


@pytest.fixture
def sim(server: RunningServer, knobs: SimulatorKnobs) -> Iterator[ComputeGpuState]:
    """The simulator's state; afterwards every rental is ended and forgotten, knobs reset."""
    state: ComputeGpuState = server.app.state.sim
    spot_prices = {item.gpu_type: item.spot_price_per_hour for item in state.gpu_types}
    yield state
    for rental_id in list(state.book.rentals):
        state.book.stop_rental(rental_id)
    for pod in state.book.every_pod():
        state.book.destroy(pod.id)
    state.book.rentals.clear()
    state.book.pods.clear()
    for item in state.gpu_types:
        item.spot_price_per_hour = spot_prices[item.gpu_type]
    knobs.forced.clear()
    knobs.refusals.clear()


def make_adapter(server: RunningServer, **overrides: Any) -> ComputeGpuAdapter:
    return ComputeGpuAdapter(fast_config(server.url, API_KEY, **overrides))


@pytest.fixture
def adapter(server: RunningServer, sim: ComputeGpuState) -> Iterator[ComputeGpuAdapter]:
    made = make_adapter(server)
    yield made
    made.close()


def listing_offer(adapter: ComputeGpuAdapter, tier: Tier = Tier.ON_DEMAND) -> Offer:
    """An available Ollama listing that publishes the models it serves."""
    for offer in adapter.list_offers().offers:
        ref = offer.ref
        if (
            ref["family"] == "listing"
            and offer.available
            and offer.tier is tier
            and ref["instance_type"] == "ollama"
            and ref.get("ollama_models")
        ):
            return offer
    raise AssertionError(f"no available {tier} Ollama listing")


def pod_offer(
    adapter: ComputeGpuAdapter, tier: Tier = Tier.ON_DEMAND, count: int = 1, gpu_type: str = ""
) -> Offer:
    for offer in adapter.list_offers().offers:
        if (
            offer.ref["family"] == "cloud"
            and offer.available
            and offer.tier is tier
            and offer.gpu_count == count
            and gpu_type in ("", offer.ref["gpu_type"])
        ):
            return offer
    raise AssertionError(f"no available {count}x {tier} {gpu_type or 'pod'} offer")


def served_model(offer: Offer) -> Workload:
    return Workload(mode=WorkloadMode.MODEL, model=offer.ref["ollama_models"].split(",")[0])


LLAMA = Workload(mode=WorkloadMode.MODEL, model="llama3.3")


def wait_for(adapter: ComputeGpuAdapter, handle: str, status: InstanceStatus) -> Instance:
    """Poll until the instance reaches `status`, a bounded number of times."""
    instance = adapter.status(handle)
    for _ in range(POLL_ATTEMPTS):
        if instance.status is status:
            return instance
        time.sleep(POLL_PAUSE)
        instance = adapter.status(handle)
    raise AssertionError(f"{handle} stayed {instance.status}, never {status}")


# --- GPU cloud pods ------------------------------------------------------------------------------


def test_a_pod_deploys_runs_pauses_resumes_and_is_destroyed(
    adapter: ComputeGpuAdapter, sim: ComputeGpuState
) -> None:
    offer = pod_offer(adapter, count=2)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == offer.ref["gpu_type"])
    free_before = gpu_type.free_gpus

    created = adapter.provision(offer, LLAMA, "rnt_pod")

    assert created.handle.startswith("pod:")
    assert created.status is InstanceStatus.PROVISIONING
    assert sim.last_deploy is not None
    assert {key: sim.last_deploy[key] for key in ("gpuType", "gpuCount", "instanceType")} == {
        "gpuType": offer.ref["gpu_type"],
        "gpuCount": 2,
        "instanceType": "ollama",
    }
    assert sim.last_deploy["models"] == ["llama3.3"]
    assert gpu_type.free_gpus == free_before - 2
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    assert adapter.stop(created.handle).status is InstanceStatus.STOPPED
    assert adapter.start(created.handle).status is InstanceStatus.PROVISIONING
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)

    assert ended.status is again.status is InstanceStatus.TERMINATED
    assert ended.ended_at is not None
    assert gpu_type.free_gpus == free_before


def test_pod_upstream_uses_the_per_rental_key_once_running(
    adapter: ComputeGpuAdapter, server: RunningServer, sim: ComputeGpuState
) -> None:
    handle = adapter.provision(pod_offer(adapter), LLAMA, "rnt_pod_up").handle
    with pytest.raises(ProviderRefused) as deploying:
        adapter.upstream(handle)
    wait_for(adapter, handle, InstanceStatus.RUNNING)
    pod = sim.book.pods[handle.removeprefix("pod:")]

    upstream = adapter.upstream(handle)

    assert deploying.value.reason == "conflict"
    assert upstream is not None
    assert upstream.base_url == f"{server.url}/api/v1/ollama/{pod.id}"
    assert upstream.headers == {"Authorization": f"Bearer {pod.api_key}"}
    assert API_KEY not in str(upstream.headers)


def test_an_ssh_pod_has_ssh_access_and_no_upstream(
    adapter: ComputeGpuAdapter, sim: ComputeGpuState
) -> None:
    ssh = Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAA test")
    handle = adapter.provision(pod_offer(adapter), ssh, "rnt_ssh").handle

    running = wait_for(adapter, handle, InstanceStatus.RUNNING)

    assert sim.last_deploy is not None and sim.last_deploy["instanceType"] == "ssh"
    assert running.ssh is not None
    assert running.ssh.command.startswith("ssh root@")
    assert adapter.upstream(handle) is None


def test_a_spot_pod_bids_the_offer_price_and_reports_preemption(
    adapter: ComputeGpuAdapter, server: RunningServer, sim: ComputeGpuState
) -> None:
    offer = pod_offer(adapter, Tier.SPOT)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == offer.ref["gpu_type"])
    handle = adapter.provision(offer, LLAMA, "rnt_spot").handle
    free_while_deployed = gpu_type.free_gpus

    answer = httpx.post(f"{server.url}/_sim/instances/{handle.removeprefix('pod:')}/interrupt")
    instance = adapter.status(handle)

    assert sim.last_deploy is not None
    assert sim.last_deploy["bidPerGpu"] == pytest.approx(offer.base_price_per_gpu_hour / 1e6)
    assert answer.status_code == 200
    assert (instance.status, instance.reason) == (InstanceStatus.INTERRUPTED, "preempted")
    assert instance.ended_at is not None
    assert gpu_type.free_gpus == free_while_deployed + 1
    assert adapter.terminate(handle).status is InstanceStatus.TERMINATED


def test_an_on_demand_pod_cannot_be_preempted(
    adapter: ComputeGpuAdapter, server: RunningServer, sim: ComputeGpuState
) -> None:
    handle = adapter.provision(pod_offer(adapter), LLAMA, "rnt_od").handle
    pod_id = handle.removeprefix("pod:")

    answer = httpx.post(f"{server.url}/_sim/instances/{pod_id}/interrupt")

    assert answer.status_code == 409
    with pytest.raises(SimRefusal):
        sim.interrupt(pod_id)
    assert adapter.status(handle).status is not InstanceStatus.INTERRUPTED


def test_a_spot_bid_below_the_moved_price_is_refused_for_that_offer(
    adapter: ComputeGpuAdapter, sim: ComputeGpuState
) -> None:
    offer = pod_offer(adapter, Tier.SPOT)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == offer.ref["gpu_type"])
    assert gpu_type.spot_price_per_hour is not None
    gpu_type.spot_price_per_hour += 0.05

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer, LLAMA, "rnt_low_bid")

    assert (raised.value.reason, scope_of(raised.value)) == ("conflict", Scope.OFFER)


# --- refusals and capacity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason", "scope", "status"),
    [
        ("capacity", "no_capacity", Scope.REGION, 409),
        ("payment", "insufficient_funds", Scope.PROVIDER, 402),
        ("conflict", "conflict", Scope.OFFER, 409),
        ("gone", "offer_gone", Scope.OFFER, 404),
    ],
)
def test_each_pod_refusal_kind_has_its_reason_and_scope(
    adapter: ComputeGpuAdapter,
    sim: ComputeGpuState,
    knobs: SimulatorKnobs,
    kind: Any,
    reason: str,
    scope: Scope,
    status: int,
) -> None:
    offer = pod_offer(adapter)
    knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer, LLAMA, "rnt_refused")

    assert (raised.value.reason, raised.value.status) == (reason, status)
    assert scope_of(raised.value) is scope
    assert sim.book.pods == {}


def test_deploying_a_type_out_exhausts_it_and_destroying_frees_it(
    adapter: ComputeGpuAdapter, sim: ComputeGpuState
) -> None:
    largest = pod_offer(adapter, count=8)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == largest.ref["gpu_type"])
    handles = []
    for _ in range(gpu_type.free_gpus // 8):
        handles.append(adapter.provision(largest, LLAMA, "rnt_fill").handle)
    one_x = next(
        offer
        for offer in adapter.list_offers().offers
        if offer.ref.get("gpu_type") == gpu_type.gpu_type and offer.gpu_count == 1
    )

    assert gpu_type.free_gpus == 0
    assert one_x.available is False
    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(one_x, LLAMA, "rnt_too_many")
    assert (raised.value.reason, scope_of(raised.value)) == ("no_capacity", Scope.REGION)

    adapter.terminate(handles[0])

    freed = pod_offer(adapter, count=1, gpu_type=gpu_type.gpu_type)
    assert freed.available
    assert adapter.provision(freed, LLAMA, "rnt_freed").status is InstanceStatus.PROVISIONING


# --- unknown handles, listing, workloads, auth, faults -------------------------------------------


@pytest.mark.parametrize("handle", ["pod:ffffffffffffff", "listing:rnt_missing", "vm:1", "x"])
def test_an_unknown_handle_is_not_found_but_terminating_it_is_harmless(
    adapter: ComputeGpuAdapter, handle: str
) -> None:
    with pytest.raises(ProviderRefused) as raised:
        adapter.status(handle)

    assert raised.value.reason == "not_found"
    assert adapter.terminate(handle).status is InstanceStatus.TERMINATED


def test_list_instances_returns_every_live_rental_and_pod(
    adapter: ComputeGpuAdapter, server: RunningServer, knobs: SimulatorKnobs
) -> None:
    knobs.provision_seconds = 60  # the pods still deploying when listed, however slow
    listing = listing_offer(adapter)
    rented = adapter.provision(listing, served_model(listing), "rnt_a").handle
    running = adapter.provision(pod_offer(adapter), LLAMA, "rnt_b").handle
    paused = adapter.provision(pod_offer(adapter), LLAMA, "rnt_c").handle
    preempted = adapter.provision(pod_offer(adapter, Tier.SPOT), LLAMA, "rnt_d").handle
    destroyed = adapter.provision(pod_offer(adapter), LLAMA, "rnt_e").handle
    ended_listing = listing_offer(adapter)
    ended = adapter.provision(ended_listing, served_model(ended_listing), "rnt_f").handle
    adapter.stop(paused)
    httpx.post(f"{server.url}/_sim/instances/{preempted.removeprefix('pod:')}/interrupt")
    adapter.terminate(destroyed)
    adapter.terminate(ended)

    listed = {instance.handle: instance.status for instance in adapter.list_instances()}
    simulated = httpx.get(f"{server.url}/_sim/instances").json()["instances"]

    assert listed == {
        rented: InstanceStatus.RUNNING,
        running: InstanceStatus.PROVISIONING,
        paused: InstanceStatus.STOPPED,
        preempted: InstanceStatus.INTERRUPTED,
    }
    assert len(simulated) == 6
    assert {item["status"] for item in simulated} == {
        "active",
        "stopped",
        "deploying",
        "paused",
        "preempted",
        "destroyed",
    }


def test_check_workload_through_the_adapter_and_no_provision_for_invalid(
    adapter: ComputeGpuAdapter, sim: ComputeGpuState
) -> None:
    listing = listing_offer(adapter)
    pod = pod_offer(adapter)
    adapter.check_workload(listing, served_model(listing))
    adapter.check_workload(pod, Workload(image="pytorch/pytorch"))

    for offer, workload, field in [
        (listing, Workload(image="pytorch/pytorch"), "image"),
        (listing, Workload(mode=WorkloadMode.MODEL, model="not-served-here"), "model"),
        (listing, Workload(mode=WorkloadMode.SSH), "mode"),
        (pod, Workload(mode=WorkloadMode.MODEL), "model"),
    ]:
        with pytest.raises(UnsupportedWorkload) as raised:
            adapter.check_workload(offer, workload)
        assert raised.value.field == field

    deploys = sim.requests[DEPLOY_PATH]
    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(pod, Workload(mode=WorkloadMode.TEMPLATE, template="x"), "rnt_tpl")
    assert (refused.value.reason, sim.requests[DEPLOY_PATH]) == ("refused", deploys)


def test_without_a_key_rentals_are_unauthorized(
    server: RunningServer, sim: ComputeGpuState
) -> None:
    keyless = make_adapter(server, api_key=None)
    try:
        pod = pod_offer(keyless)
        with pytest.raises(ProviderRefused) as deploy_error:
            keyless.provision(pod, LLAMA, "rnt_nokey")
        with pytest.raises(ProviderRefused) as list_error:
            keyless.list_instances()
    finally:
        keyless.close()

    assert (deploy_error.value.reason, deploy_error.value.status) == ("unauthorized", 401)
    assert scope_of(deploy_error.value) is Scope.PROVIDER
    assert list_error.value.reason == "unauthorized"
    assert sim.book.pods == {}


def test_a_5xx_on_provision_is_retried_and_deploys_once(
    adapter: ComputeGpuAdapter, sim: ComputeGpuState, knobs: SimulatorKnobs
) -> None:
    offer = pod_offer(adapter)
    knobs.fail_next(2, "5xx")

    created = adapter.provision(offer, LLAMA, "rnt_retry")

    assert not knobs.forced
    assert [f"pod:{pod_id}" for pod_id in sim.book.pods] == [created.handle]


def test_the_simulator_answers_in_the_providers_error_format(server: RunningServer) -> None:
    headers = {"Authorization": "Bearer gpu_x"}

    no_key = httpx.get(f"{server.url}{PODS_PATH}")
    not_bearer = httpx.get(f"{server.url}{PODS_PATH}", headers={"Authorization": "Basic eDp5"})
    bad_body = httpx.post(f"{server.url}{DEPLOY_PATH}", json={"gpuCount": 1}, headers=headers)
    unknown = httpx.get(f"{server.url}{PODS_PATH}/nope", headers=headers)

    assert (no_key.status_code, not_bearer.status_code) == (401, 401)
    assert isinstance(no_key.json()["error"], str)
    assert bad_body.status_code == 400
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Instance not found."})
