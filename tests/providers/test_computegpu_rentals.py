"""ComputeGPU rentals: what is particular to ComputeGPU, against its simulator over real HTTP.

The lifecycle, refusals, unknown handles, keys, retries and interruption rules every provider
shares are in `test_rental_conformance.py`; here are ComputeGPU's GPU cloud pods and what both its
families share: the deploy body, per-pod keys, SSH pods, spot bids, capacity, listing everything,
workload checks and its error format. Marketplace listings are in `test_computegpu_listings.py`,
which reuses the offer helpers defined here.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pricing.offer import Offer, Tier
from providers.base import ProviderRefused
from providers.computegpu.adapter import PODS_PATH, ComputeGpuAdapter
from providers.computegpu.workload import DEPLOY_PATH
from providers.rental import InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode, scope_of
from providers.simulators.kit import SimError
from tests.providers.support import SimulatedProvider, wait_for

API_KEY = "gpu_test_key_do_not_leak"
pytestmark = pytest.mark.provider("computegpu", api_key=API_KEY)


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


# --- GPU cloud pods ------------------------------------------------------------------------------


def test_a_pod_deploys_what_was_asked_and_holds_its_gpus_until_destroyed(
    adapter: ComputeGpuAdapter, sim: Any
) -> None:
    offer = pod_offer(adapter, count=2)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == offer.ref["gpu_type"])
    free_before = gpu_type.free_gpus

    created = adapter.provision(offer, LLAMA, "rnt_pod")

    assert sim.last_deploy is not None
    assert {key: sim.last_deploy[key] for key in ("gpuType", "gpuCount", "instanceType")} == {
        "gpuType": offer.ref["gpu_type"],
        "gpuCount": 2,
        "instanceType": "ollama",
    }
    assert sim.last_deploy["models"] == ["llama3.3"]
    assert gpu_type.free_gpus == free_before - 2
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    assert adapter.terminate(created.handle).status is InstanceStatus.TERMINATED
    assert gpu_type.free_gpus == free_before


def test_pod_upstream_uses_the_per_rental_key_once_running(
    adapter: ComputeGpuAdapter, provider: SimulatedProvider, sim: Any
) -> None:
    handle = adapter.provision(pod_offer(adapter), LLAMA, "rnt_pod_up").handle
    with pytest.raises(ProviderRefused) as deploying:
        adapter.upstream(handle)
    wait_for(adapter, handle, InstanceStatus.RUNNING)
    pod = sim.book.pods[handle.removeprefix("pod:")]

    upstream = adapter.upstream(handle)

    assert deploying.value.reason == "conflict"
    assert upstream is not None
    assert upstream.base_url == f"{provider.url}/api/v1/ollama/{pod.id}"
    assert upstream.headers == {"Authorization": f"Bearer {pod.api_key}"}
    assert API_KEY not in str(upstream.headers)


def test_an_ssh_pod_has_ssh_access_and_no_upstream(adapter: ComputeGpuAdapter, sim: Any) -> None:
    ssh = Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAA test")
    handle = adapter.provision(pod_offer(adapter), ssh, "rnt_ssh").handle

    running = wait_for(adapter, handle, InstanceStatus.RUNNING)

    assert sim.last_deploy is not None and sim.last_deploy["instanceType"] == "ssh"
    assert running.ssh is not None
    assert running.ssh.command.startswith("ssh root@")
    assert adapter.upstream(handle) is None


def test_a_spot_pod_bids_the_offer_price_and_gives_its_gpu_back_when_preempted(
    adapter: ComputeGpuAdapter, provider: SimulatedProvider, sim: Any
) -> None:
    offer = pod_offer(adapter, Tier.SPOT)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == offer.ref["gpu_type"])
    handle = adapter.provision(offer, LLAMA, "rnt_spot").handle
    free_while_deployed = gpu_type.free_gpus

    answer = provider.interrupt(handle)

    assert sim.last_deploy is not None
    assert sim.last_deploy["bidPerGpu"] == pytest.approx(offer.base_price_per_gpu_hour / 1e6)
    assert answer.status_code == 200
    assert gpu_type.free_gpus == free_while_deployed + 1


def test_the_simulator_itself_refuses_to_preempt_an_on_demand_pod(
    adapter: ComputeGpuAdapter, sim: Any
) -> None:
    handle = adapter.provision(pod_offer(adapter), LLAMA, "rnt_od").handle

    with pytest.raises(SimError):
        sim.interrupt(handle.removeprefix("pod:"))
    assert adapter.status(handle).status is not InstanceStatus.INTERRUPTED


def test_a_spot_bid_below_the_moved_price_is_refused_for_that_offer(
    adapter: ComputeGpuAdapter, sim: Any
) -> None:
    offer = pod_offer(adapter, Tier.SPOT)
    gpu_type = next(item for item in sim.gpu_types if item.gpu_type == offer.ref["gpu_type"])
    assert gpu_type.spot_price_per_hour is not None
    gpu_type.spot_price_per_hour += 0.05

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer, LLAMA, "rnt_low_bid")

    assert (raised.value.reason, scope_of(raised.value)) == ("conflict", "offer")


# --- refusals and capacity -----------------------------------------------------------------------


def test_deploying_a_type_out_exhausts_it_and_destroying_frees_it(
    adapter: ComputeGpuAdapter, sim: Any
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
    assert (raised.value.reason, scope_of(raised.value)) == ("no_capacity", "region")

    adapter.terminate(handles[0])

    freed = pod_offer(adapter, count=1, gpu_type=gpu_type.gpu_type)
    assert freed.available
    assert adapter.provision(freed, LLAMA, "rnt_freed").status is InstanceStatus.PROVISIONING


# --- unknown handles, listing, workloads, auth, faults -------------------------------------------


def test_list_instances_returns_every_live_rental_and_pod(
    adapter: ComputeGpuAdapter, provider: SimulatedProvider
) -> None:
    provider.knobs.provision_seconds = 60  # the pods still deploying when listed, however slow
    listing = listing_offer(adapter)
    rented = adapter.provision(listing, served_model(listing), "rnt_a").handle
    running = adapter.provision(pod_offer(adapter), LLAMA, "rnt_b").handle
    paused = adapter.provision(pod_offer(adapter), LLAMA, "rnt_c").handle
    preempted = adapter.provision(pod_offer(adapter, Tier.SPOT), LLAMA, "rnt_d").handle
    destroyed = adapter.provision(pod_offer(adapter), LLAMA, "rnt_e").handle
    ended_listing = listing_offer(adapter)
    ended = adapter.provision(ended_listing, served_model(ended_listing), "rnt_f").handle
    adapter.stop(paused)
    provider.interrupt(preempted)
    adapter.terminate(destroyed)
    adapter.terminate(ended)

    listed = {instance.handle: instance.status for instance in adapter.list_instances()}
    simulated = provider.instances()

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
    adapter: ComputeGpuAdapter, sim: Any
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


def test_the_simulator_answers_in_the_providers_error_format(provider: SimulatedProvider) -> None:
    headers = {"Authorization": "Bearer gpu_x"}

    no_key = httpx.get(f"{provider.url}{PODS_PATH}")
    not_bearer = httpx.get(f"{provider.url}{PODS_PATH}", headers={"Authorization": "Basic eDp5"})
    bad_body = httpx.post(f"{provider.url}{DEPLOY_PATH}", json={"gpuCount": 1}, headers=headers)
    unknown = httpx.get(f"{provider.url}{PODS_PATH}/nope", headers=headers)

    assert (no_key.status_code, not_bearer.status_code) == (401, 401)
    assert isinstance(no_key.json()["error"], str)
    assert bad_body.status_code == 400
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Instance not found."})
