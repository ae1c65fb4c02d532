"""IC GPU rentals: what is particular to IC GPU, against its simulator over real HTTP.

The lifecycle, refusals, unknown instances, keys, retries and interruption rules every provider
shares are in `test_rental_conformance.py`; here are IC GPU's own: SSH access and capacity through
stop and start, idempotent starts keyed by the rental id, requeueing a preempted batch instance,
dry runs, and listing page by page.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from pricing.offer import Offer, Tier
from providers.base import ProviderRefused
from providers.icgpu.adapter import IcGpuAdapter
from providers.rental import InstanceStatus, Scope, SshAccess, Workload, WorkloadMode, scope_of
from providers.simulators.icgpu.state import PAGE_LIMIT
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, wait_for

API_KEY = "ic_rental_key_do_not_leak"
SSH = Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAAC3Nza renter@laptop")
pytestmark = pytest.mark.provider("icgpu", api_key=API_KEY)


def offer_of(adapter: IcGpuAdapter, tier: Tier = Tier.SPOT, n: int = 0) -> Offer:
    """The `n`-th available offer of `tier`, from a distinct IC GPU tier entry for each `n`."""
    seen: list[Offer] = []
    for offer in adapter.list_offers().offers:
        identity = (offer.ref["tier"], offer.ref["gpu_model"])
        if offer.tier is tier and offer.available and identity not in _identities(seen):
            seen.append(offer)
    assert len(seen) > n, f"fewer than {n + 1} available {tier} tiers"
    return seen[n]


def _identities(offers: list[Offer]) -> set[tuple[str, str]]:
    return {(o.ref["tier"], o.ref["gpu_model"]) for o in offers}


def tier_of(sim: Any, offer: Offer) -> Any:
    return next(
        t for t in sim.tiers if (t.tier, t.gpu_model) == (offer.ref["tier"], offer.ref["gpu_model"])
    )


def count_of(adapter: IcGpuAdapter, offer: Offer) -> int | None:
    return next(o for o in adapter.list_offers().offers if o.id == offer.id).available_count


# The lifecycle


def test_an_instance_holds_a_gpu_and_ssh_access_only_while_it_runs(
    adapter: IcGpuAdapter, knobs: SimulatorKnobs, provider: SimulatedProvider
) -> None:
    knobs.provision_seconds = 60
    offer = offer_of(adapter, Tier.ON_DEMAND)
    free = count_of(adapter, offer)
    assert free is not None

    created = adapter.provision(offer, SSH, "rnt_lifecycle")

    assert count_of(adapter, offer) == free - 1
    [made] = provider.instances()
    assert (made["tier"], made["gpu_model"], made["workload_type"]) == (
        offer.ref["tier"],
        offer.ref["gpu_model"],
        "interactive",
    )
    with pytest.raises(ProviderRefused) as pending:
        adapter.stop(created.handle)
    assert pending.value.reason == "conflict"

    knobs.provision_seconds = 0.2
    running = wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    assert running.ssh is not None
    assert (running.ssh.host, running.ssh.user) == ("127.0.0.1", "gpuuser")
    assert adapter.upstream(created.handle) is None

    stopped = adapter.stop(created.handle)
    assert (stopped.status, stopped.ssh) == (InstanceStatus.STOPPED, None)
    assert count_of(adapter, offer) == free
    assert adapter.stop(created.handle).status is InstanceStatus.STOPPED

    assert adapter.start(created.handle).status is InstanceStatus.PROVISIONING
    assert wait_for(adapter, created.handle, InstanceStatus.RUNNING).ssh == running.ssh

    assert adapter.terminate(created.handle).status is InstanceStatus.TERMINATED
    assert count_of(adapter, offer) == free


def test_a_stopped_instance_cannot_start_without_a_free_gpu(
    adapter: IcGpuAdapter, sim: Any
) -> None:
    offer = offer_of(adapter, Tier.ON_DEMAND)
    created = adapter.provision(offer, SSH, "rnt_squeezed")
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    adapter.stop(created.handle)
    tier_of(sim, offer).available = 0

    with pytest.raises(ProviderRefused) as refused:
        adapter.start(created.handle)

    assert refused.value.reason == "no_capacity"
    assert adapter.status(created.handle).status is InstanceStatus.STOPPED


# Idempotency


def test_a_repeated_start_returns_the_same_instance_and_makes_no_second(
    adapter: IcGpuAdapter, provider: SimulatedProvider
) -> None:
    offer = offer_of(adapter)
    free = count_of(adapter, offer)

    first = adapter.provision(offer, SSH, "rnt_twice")
    second = adapter.provision(offer, SSH, "rnt_twice")

    assert second.handle == first.handle
    assert len(provider.instances()) == 1
    assert count_of(adapter, offer) == (free or 0) - 1
    replayed = httpx.post(
        f"{provider.url}/api/v1/instances",
        headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "raw-key"},
        json={"name": "raw", "tier": offer.ref["tier"], "gpu_model": offer.ref["gpu_model"]},
    )
    again = httpx.post(
        f"{provider.url}/api/v1/instances",
        headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "raw-key"},
        json={"name": "raw", "tier": offer.ref["tier"], "gpu_model": offer.ref["gpu_model"]},
    )
    assert again.json()["id"] == replayed.json()["id"]
    assert again.headers["Idempotency-Key"] == "raw-key"
    assert len(provider.instances()) == 2


def test_a_start_whose_answer_was_lost_is_retried_into_the_same_instance(
    provider: SimulatedProvider, knobs: SimulatorKnobs, sim: Any
) -> None:
    impatient = provider.adapter(timeout_seconds=0.3)
    try:
        offer = offer_of(impatient)
        knobs.accept_delay_seconds = 1.0
        created = impatient.provision(offer, SSH, "rnt_lost_answer")
    finally:
        impatient.close()

    assert sim.requests["POST /api/v1/instances"] >= 2
    assert [i["id"] for i in provider.instances()] == [created.handle]


def test_a_recovery_on_another_offer_starts_a_new_instance(
    adapter: IcGpuAdapter, provider: SimulatedProvider
) -> None:
    first = adapter.provision(offer_of(adapter, n=0), SSH, "rnt_recovered")
    second = adapter.provision(offer_of(adapter, n=1), SSH, "rnt_recovered")

    assert second.handle != first.handle
    assert {i["name"] for i in provider.instances()} == {"rnt_recovered"}
    assert len(provider.instances()) == 2


# Preemption


def test_a_preempted_batch_instance_gives_its_gpu_back_and_can_be_requeued(
    adapter: IcGpuAdapter, provider: SimulatedProvider
) -> None:
    offer = offer_of(adapter, Tier.SPOT)
    free = count_of(adapter, offer)
    created = adapter.provision(offer, SSH, "rnt_batch")
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    assert provider.interrupt(created.handle).status_code == 200
    assert adapter.status(created.handle).status is InstanceStatus.INTERRUPTED
    assert count_of(adapter, offer) == free
    with pytest.raises(ProviderRefused) as replayed:
        adapter.provision(offer, SSH, "rnt_batch")
    assert replayed.value.reason == "conflict"
    assert "preempted" in replayed.value.message

    assert adapter.requeue(created.handle).status is InstanceStatus.PROVISIONING
    assert wait_for(adapter, created.handle, InstanceStatus.RUNNING).reason is None


# Refusals


def refusals(
    adapter: IcGpuAdapter, offer: Offer, rental_id: str
) -> tuple[ProviderRefused, ProviderRefused]:
    """The refusals of starting `offer` for real and of a dry run of it (both must refuse)."""
    with pytest.raises(ProviderRefused) as on_create:
        adapter.provision(offer, SSH, rental_id)
    with pytest.raises(ProviderRefused) as on_dry_run:
        adapter.dry_run(offer, SSH, rental_id)
    return on_create.value, on_dry_run.value


def test_exhausted_capacity_is_no_capacity_until_an_instance_ends(
    adapter: IcGpuAdapter, sim: Any
) -> None:
    offer = offer_of(adapter)
    tier_of(sim, offer).available = 2
    first = adapter.provision(offer, SSH, "rnt_fill_1")
    adapter.provision(offer, SSH, "rnt_fill_2")

    refused, dry = refusals(adapter, offer, "rnt_fill_3")

    assert refused.reason == dry.reason == "no_capacity"
    assert scope_of(refused) is Scope.REGION
    assert count_of(adapter, offer) == 0
    adapter.terminate(first.handle)
    assert count_of(adapter, offer) == 1
    adapter.dry_run(offer, SSH, "rnt_fill_3")
    assert adapter.provision(offer, SSH, "rnt_fill_3").status is InstanceStatus.PROVISIONING


def test_a_dry_run_creates_nothing_and_a_vanished_tier_is_gone(
    adapter: IcGpuAdapter, provider: SimulatedProvider
) -> None:
    offer = offer_of(adapter)
    vanished = replace(offer, ref={**offer.ref, "gpu_model": "B200"})

    adapter.dry_run(offer, SSH, "rnt_dry")
    on_create, on_dry_run = refusals(adapter, vanished, "rnt_dry")

    assert on_dry_run.reason == on_create.reason == "offer_gone"
    assert provider.instances() == []


# Reconciliation


def test_list_instances_reads_every_page_with_rental_ids(adapter: IcGpuAdapter, sim: Any) -> None:
    offer = offer_of(adapter)
    tier_of(sim, offer).available = 10
    handles = [adapter.provision(offer, SSH, f"rnt_page_{n}").handle for n in range(8)]
    adapter.terminate(handles[3])

    listed = adapter.list_instances()

    assert len(handles) > 2 * PAGE_LIMIT
    assert sim.requests["GET /api/v1/instances"] == 3
    assert [i.handle for i in listed] == handles[:3] + handles[4:]
    assert [i.rental_id for i in listed] == [f"rnt_page_{n}" for n in (0, 1, 2, 4, 5, 6, 7)]
    assert all(i.provider == "icgpu" for i in listed)


def test_ssh_access_comes_from_ssh_host_and_port(adapter: IcGpuAdapter, sim: Any) -> None:
    created = adapter.provision(offer_of(adapter), SSH, "rnt_ssh")

    running = wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    port = sim.instances[created.handle].ssh_port
    assert running.ssh == SshAccess("127.0.0.1", port, "gpuuser")
