"""IC GPU rentals: the adapter against its simulator over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from pricing.offer import Offer, Tier
from providers.base import ProviderRefused
from providers.icgpu.adapter import IcGpuAdapter
from providers.icgpu.seed import GpuTier
from providers.icgpu.sim_state import PAGE_LIMIT
from providers.icgpu.simulator import IcGpuState, create_simulator
from providers.rental import (
    Instance,
    InstanceStatus,
    Scope,
    SshAccess,
    Workload,
    WorkloadMode,
    scope_of,
)
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread
from tests.providers.support import fast_config

API_KEY = "ic_rental_key_do_not_leak"
SSH = Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAAC3Nza renter@laptop")
POLL_ATTEMPTS = 200
POLL_PAUSE = 0.02


@pytest.fixture
def server() -> Iterator[RunningServer]:
    """A fresh simulator per test, so capacity and instances start from the seed."""
    running = serve_in_thread(create_simulator(SimulatorKnobs(seed=11, provision_seconds=0.2)))
    yield running
    running.stop()


@pytest.fixture
def knobs(server: RunningServer) -> SimulatorKnobs:
    return server.app.state.knobs


@pytest.fixture
def sim(server: RunningServer) -> IcGpuState:
    return server.app.state.sim


def make_adapter(server: RunningServer, **overrides: Any) -> IcGpuAdapter:
    return IcGpuAdapter(fast_config(server.url, API_KEY, **overrides))


@pytest.fixture
def adapter(server: RunningServer) -> Iterator[IcGpuAdapter]:
    made = make_adapter(server)
    yield made
    made.close()


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


def tier_of(sim: IcGpuState, offer: Offer) -> GpuTier:
    return next(
        t for t in sim.tiers if (t.tier, t.gpu_model) == (offer.ref["tier"], offer.ref["gpu_model"])
    )


def count_of(adapter: IcGpuAdapter, offer: Offer) -> int | None:
    return next(o for o in adapter.list_offers().offers if o.id == offer.id).available_count


def wait_for(adapter: IcGpuAdapter, handle: str, status: InstanceStatus) -> Instance:
    instance = adapter.status(handle)
    for _ in range(POLL_ATTEMPTS):
        if instance.status is status:
            return instance
        time.sleep(POLL_PAUSE)
        instance = adapter.status(handle)
    raise AssertionError(f"{handle} stayed {instance.status}, never {status}")


def sim_instances(server: RunningServer) -> list[dict[str, Any]]:
    return httpx.get(f"{server.url}/_sim/instances").json()["instances"]


# The lifecycle


def test_an_instance_provisions_runs_stops_starts_and_terminates(
    adapter: IcGpuAdapter, knobs: SimulatorKnobs, server: RunningServer
) -> None:
    knobs.provision_seconds = 60
    offer = offer_of(adapter, Tier.ON_DEMAND)
    free = count_of(adapter, offer)
    assert free is not None

    created = adapter.provision(offer, SSH, "rnt_lifecycle")

    assert created.status is InstanceStatus.PROVISIONING
    assert created.handle.startswith("inst-")
    assert created.rental_id == "rnt_lifecycle"
    assert count_of(adapter, offer) == free - 1
    [made] = sim_instances(server)
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

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)
    assert ended.status is again.status is InstanceStatus.TERMINATED
    assert ended.ended_at is not None
    assert adapter.status(created.handle).status is InstanceStatus.TERMINATED
    assert count_of(adapter, offer) == free


def test_a_stopped_instance_cannot_start_without_a_free_gpu(
    adapter: IcGpuAdapter, sim: IcGpuState
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
    adapter: IcGpuAdapter, server: RunningServer
) -> None:
    offer = offer_of(adapter)
    free = count_of(adapter, offer)

    first = adapter.provision(offer, SSH, "rnt_twice")
    second = adapter.provision(offer, SSH, "rnt_twice")

    assert second.handle == first.handle
    assert len(sim_instances(server)) == 1
    assert count_of(adapter, offer) == (free or 0) - 1
    replayed = httpx.post(
        f"{server.url}/api/v1/instances",
        headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "raw-key"},
        json={"name": "raw", "tier": offer.ref["tier"], "gpu_model": offer.ref["gpu_model"]},
    )
    again = httpx.post(
        f"{server.url}/api/v1/instances",
        headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "raw-key"},
        json={"name": "raw", "tier": offer.ref["tier"], "gpu_model": offer.ref["gpu_model"]},
    )
    assert again.json()["id"] == replayed.json()["id"]
    assert again.headers["Idempotency-Key"] == "raw-key"
    assert len(sim_instances(server)) == 2


def test_a_start_whose_answer_was_lost_is_retried_into_the_same_instance(
    server: RunningServer, knobs: SimulatorKnobs, sim: IcGpuState
) -> None:
    impatient = make_adapter(server, timeout_seconds=0.3)
    try:
        offer = offer_of(impatient)
        knobs.accept_delay_seconds = 1.0
        created = impatient.provision(offer, SSH, "rnt_lost_answer")
    finally:
        impatient.close()

    assert sim.requests["POST /api/v1/instances"] >= 2
    assert [i["id"] for i in sim_instances(server)] == [created.handle]


def test_transient_faults_on_a_start_are_retried_safely(
    adapter: IcGpuAdapter, knobs: SimulatorKnobs, server: RunningServer
) -> None:
    knobs.retry_after_seconds = 0.01
    knobs.fail_next(1, "5xx")
    knobs.fail_next(1, "429")

    created = adapter.provision(offer_of(adapter), SSH, "rnt_retried")

    assert not knobs.forced
    assert [i["id"] for i in sim_instances(server)] == [created.handle]


def test_a_recovery_on_another_offer_starts_a_new_instance(
    adapter: IcGpuAdapter, server: RunningServer
) -> None:
    first = adapter.provision(offer_of(adapter, n=0), SSH, "rnt_recovered")
    second = adapter.provision(offer_of(adapter, n=1), SSH, "rnt_recovered")

    assert second.handle != first.handle
    assert {i["name"] for i in sim_instances(server)} == {"rnt_recovered"}
    assert len(sim_instances(server)) == 2


# Preemption


def test_a_preempted_batch_instance_is_interrupted_and_can_be_requeued(
    adapter: IcGpuAdapter, server: RunningServer
) -> None:
    offer = offer_of(adapter, Tier.SPOT)
    free = count_of(adapter, offer)
    created = adapter.provision(offer, SSH, "rnt_batch")
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    answered = httpx.post(f"{server.url}/_sim/instances/{created.handle}/interrupt")
    lost = adapter.status(created.handle)

    assert answered.status_code == 200
    assert lost.status is InstanceStatus.INTERRUPTED
    assert lost.reason == "preempted"
    assert lost.ended_at is not None
    assert count_of(adapter, offer) == free
    with pytest.raises(ProviderRefused) as replayed:
        adapter.provision(offer, SSH, "rnt_batch")
    assert replayed.value.reason == "conflict"
    assert "preempted" in replayed.value.message

    assert adapter.requeue(created.handle).status is InstanceStatus.PROVISIONING
    assert wait_for(adapter, created.handle, InstanceStatus.RUNNING).reason is None


def test_an_interactive_instance_is_not_preemptible(
    adapter: IcGpuAdapter, server: RunningServer
) -> None:
    created = adapter.provision(offer_of(adapter, Tier.ON_DEMAND), SSH, "rnt_interactive")

    answered = httpx.post(f"{server.url}/_sim/instances/{created.handle}/interrupt")

    assert answered.status_code == 409
    assert answered.json()["code"] == "ConflictException"
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
    adapter: IcGpuAdapter,
    knobs: SimulatorKnobs,
    server: RunningServer,
    kind: Any,
    reason: str,
    scope: Scope,
) -> None:
    offer = offer_of(adapter)
    knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, SSH, "rnt_refused")

    assert refused.value.reason == reason
    assert scope_of(refused.value) is scope
    assert sim_instances(server) == []
    assert adapter.provision(offer, SSH, "rnt_after").status is InstanceStatus.PROVISIONING


def test_exhausted_capacity_is_no_capacity_until_an_instance_ends(
    adapter: IcGpuAdapter, sim: IcGpuState
) -> None:
    offer = offer_of(adapter)
    tier_of(sim, offer).available = 2
    first = adapter.provision(offer, SSH, "rnt_fill_1")
    adapter.provision(offer, SSH, "rnt_fill_2")

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, SSH, "rnt_fill_3")
    with pytest.raises(ProviderRefused) as dry:
        adapter.dry_run(offer, SSH, "rnt_fill_3")

    assert refused.value.reason == dry.value.reason == "no_capacity"
    assert scope_of(refused.value) is Scope.REGION
    assert count_of(adapter, offer) == 0
    adapter.terminate(first.handle)
    assert count_of(adapter, offer) == 1
    adapter.dry_run(offer, SSH, "rnt_fill_3")
    assert adapter.provision(offer, SSH, "rnt_fill_3").status is InstanceStatus.PROVISIONING


def test_a_dry_run_creates_nothing_and_a_vanished_tier_is_gone(
    adapter: IcGpuAdapter, server: RunningServer
) -> None:
    offer = offer_of(adapter)
    vanished = replace(offer, ref={**offer.ref, "gpu_model": "B200"})

    adapter.dry_run(offer, SSH, "rnt_dry")
    with pytest.raises(ProviderRefused) as on_dry_run:
        adapter.dry_run(vanished, SSH, "rnt_dry")
    with pytest.raises(ProviderRefused) as on_create:
        adapter.provision(vanished, SSH, "rnt_dry")

    assert on_dry_run.value.reason == on_create.value.reason == "offer_gone"
    assert sim_instances(server) == []


def test_an_unknown_instance_is_not_found_and_terminating_it_is_harmless(
    adapter: IcGpuAdapter,
) -> None:
    for operation in (adapter.status, adapter.stop, adapter.start, adapter.requeue):
        with pytest.raises(ProviderRefused) as missing:
            operation("inst-missing")
        assert missing.value.reason == "not_found"
    assert adapter.terminate("inst-missing").status is InstanceStatus.TERMINATED


@pytest.mark.parametrize("key", [None, ""])
def test_a_missing_key_is_unauthorized_at_the_provider_scope(
    server: RunningServer, adapter: IcGpuAdapter, key: str | None
) -> None:
    offer = offer_of(adapter)
    keyless = make_adapter(server, api_key=key)
    try:
        with pytest.raises(ProviderRefused) as refused:
            keyless.provision(offer, SSH, "rnt_nokey")
        with pytest.raises(ProviderRefused) as listing:
            keyless.list_instances()
    finally:
        keyless.close()

    assert (refused.value.status, refused.value.reason) == (401, "unauthorized")
    assert scope_of(refused.value) is Scope.PROVIDER
    assert listing.value.reason == "unauthorized"


# Reconciliation


def test_list_instances_reads_every_page_with_rental_ids(
    adapter: IcGpuAdapter, sim: IcGpuState
) -> None:
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


def test_ssh_access_comes_from_ssh_host_and_port(adapter: IcGpuAdapter, sim: IcGpuState) -> None:
    created = adapter.provision(offer_of(adapter), SSH, "rnt_ssh")

    running = wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    port = sim.instances[created.handle].ssh_port
    assert running.ssh == SshAccess("127.0.0.1", port, "gpuuser")
