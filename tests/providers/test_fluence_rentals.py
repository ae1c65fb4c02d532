"""Fluence rentals: the adapter against its simulator over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from pricing.offer import InstanceType, Offer
from providers.base import ProviderRefused, ProviderUnavailable
from providers.fluence.adapter import FluenceAdapter
from providers.fluence.simulator import FluenceState, create_simulator
from providers.rental import (
    Instance,
    InstanceStatus,
    NotSupported,
    Scope,
    SshAccess,
    Upstream,
    Workload,
    WorkloadMode,
    scope_of,
)
from providers.simkit import RunningServer, SimulatorKnobs, serve_in_thread
from tests.providers.support import fast_config

API_KEY = "fl_rental_key_do_not_leak"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker renter@laptop"
WEB = Workload(image="nginx:1.27", ports=(8000,))
SSH = Workload(mode=WorkloadMode.SSH, ssh_key=KEY)
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
def sim(server: RunningServer) -> FluenceState:
    return server.app.state.sim


def make_adapter(server: RunningServer, **overrides: Any) -> FluenceAdapter:
    return FluenceAdapter(fast_config(server.url, API_KEY, **overrides))


@pytest.fixture
def adapter(server: RunningServer) -> Iterator[FluenceAdapter]:
    made = make_adapter(server)
    yield made
    made.close()


def offer_of(adapter: FluenceAdapter, kind: InstanceType, n: int = 0) -> Offer:
    """The `n`-th available offer of `kind` in the live catalog."""
    offers = [o for o in adapter.list_offers().offers if o.instance_type is kind and o.available]
    assert len(offers) > n, f"fewer than {n + 1} available {kind} offers"
    return offers[n]


def wait_for(adapter: FluenceAdapter, handle: str, status: InstanceStatus) -> Instance:
    """Poll until the instance reaches `status`, a bounded number of times."""
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


def test_a_container_provisions_runs_and_terminates_only_once_active(
    adapter: FluenceAdapter, knobs: SimulatorKnobs, sim: FluenceState, server: RunningServer
) -> None:
    knobs.provision_seconds = 60
    offer = offer_of(adapter, InstanceType.CONTAINER)

    created = adapter.provision(offer, WEB, "rnt_lifecycle")

    assert created.status is InstanceStatus.PROVISIONING
    assert created.handle.startswith("container:inst_")
    assert created.rental_id == "rnt_lifecycle"
    assert sim.last_authorization == f"Bearer {API_KEY}"
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING
    with pytest.raises(ProviderRefused) as pending:
        adapter.terminate(created.handle)
    assert pending.value.reason == "conflict"
    assert scope_of(pending.value) is Scope.OFFER
    assert "PENDING" in pending.value.message and "retry" in pending.value.message
    with pytest.raises(ProviderRefused) as early:
        adapter.upstream(created.handle)
    assert early.value.reason == "conflict"

    knobs.provision_seconds = 0.2
    running = wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    assert running.rental_id == "rnt_lifecycle"
    upstream = adapter.upstream(created.handle)
    assert upstream is not None and upstream.headers == {}
    assert upstream.base_url.startswith("http://127.0.0.1:")
    assert upstream.base_url != server.url  # the container's own forwarded port
    served = httpx.get(f"{upstream.base_url}/v1/models")
    assert served.status_code == 200 and served.json()["data"][0]["owned_by"] == "fluence"

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{upstream.base_url}/v1/models")

    assert ended.status is InstanceStatus.TERMINATED
    assert again.status is InstanceStatus.TERMINATED
    assert adapter.status(created.handle).status is InstanceStatus.TERMINATED
    assert [(i["name"], i["status"]) for i in sim_instances(server)] == [
        ("rnt_lifecycle", "TERMINATED")
    ]


def test_an_http_port_is_exposed_as_http_and_preferred_upstream(
    adapter: FluenceAdapter, server: RunningServer
) -> None:
    created = adapter.provision(
        offer_of(adapter, InstanceType.CONTAINER),
        Workload(image="nginx:1.27", ports=(8000, 80)),
        "rnt_http",
    )
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    [listed] = sim_instances(server)
    assert listed["container_settings"]["expose"] == [
        {"port": 8000, "protocol": "tcp"},
        {"port": 80, "protocol": "http"},
    ]
    tcp, http = listed["network"]["forwarded_ports"]
    assert (tcp["internal"], http["internal"]) == (8000, 80)
    assert tcp["external"] != http["external"]
    assert adapter.upstream(created.handle) == Upstream(f"http://127.0.0.1:{http['external']}")


@pytest.mark.parametrize("kind", [InstanceType.VM, InstanceType.BAREMETAL])
def test_a_machine_is_reached_over_ssh_and_has_no_upstream(
    adapter: FluenceAdapter, server: RunningServer, kind: InstanceType
) -> None:
    offer = offer_of(adapter, kind)

    created = adapter.provision(offer, SSH, f"rnt_{kind.value}")

    assert created.handle.startswith(f"{kind.value}:inst_")
    assert created.ssh is None
    running = wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    assert running.ssh == SshAccess("127.0.0.1", 22, "root")
    assert adapter.upstream(created.handle) is None
    [listed] = sim_instances(server)
    assert (listed["plan_id"], listed["os_image"]) == (offer.ref["option_id"], "ubuntu-22.04")
    assert adapter.terminate(created.handle).status is InstanceStatus.TERMINATED


def test_fluence_cannot_stop_start_or_interrupt(
    adapter: FluenceAdapter, server: RunningServer
) -> None:
    created = adapter.provision(offer_of(adapter, InstanceType.VM), SSH, "rnt_nostop")
    instance_id = created.handle.partition(":")[2]

    with pytest.raises(NotSupported):
        adapter.stop(created.handle)
    with pytest.raises(NotSupported):
        adapter.start(created.handle)
    interrupted = httpx.post(f"{server.url}/_sim/instances/{instance_id}/interrupt")
    assert interrupted.status_code == 409
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
    adapter: FluenceAdapter,
    knobs: SimulatorKnobs,
    server: RunningServer,
    kind: Any,
    reason: str,
    scope: Scope,
) -> None:
    offer = offer_of(adapter, InstanceType.CONTAINER)
    knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, WEB, "rnt_refused")

    assert refused.value.reason == reason
    assert scope_of(refused.value) is scope
    assert sim_instances(server) == []
    assert adapter.provision(offer, WEB, "rnt_after").status is InstanceStatus.PROVISIONING


def test_exhausted_capacity_is_no_capacity_until_an_instance_is_terminated(
    adapter: FluenceAdapter,
) -> None:
    offer = offer_of(adapter, InstanceType.CONTAINER)

    def plan_offers() -> list[Offer]:
        """The catalog's offers of the rented plan, in every location."""
        listed = adapter.list_offers().offers
        return [o for o in listed if o.ref.get("plan_id") == offer.ref["plan_id"]]

    handles = []
    for n in range(POLL_ATTEMPTS):
        try:
            handles.append(adapter.provision(offer, WEB, f"rnt_fill_{n}").handle)
        except ProviderRefused as refused:
            assert refused.reason == "no_capacity"
            assert scope_of(refused) is Scope.REGION
            break
    else:
        raise AssertionError("capacity never ran out")

    assert handles
    assert not any(o.available for o in plan_offers())
    wait_for(adapter, handles[0], InstanceStatus.RUNNING)
    adapter.terminate(handles[0])
    assert all(o.available for o in plan_offers())
    assert adapter.provision(offer, WEB, "rnt_freed").status is InstanceStatus.PROVISIONING


def test_a_rejected_os_image_is_a_refusal_listing_the_valid_ones(adapter: FluenceAdapter) -> None:
    vm = offer_of(adapter, InstanceType.VM)

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(replace(vm, ref={**vm.ref, "os_image": "arch"}), SSH, "rnt_os")

    assert refused.value.reason == "refused"
    assert "ubuntu-22.04" in refused.value.message


def test_an_unknown_handle_is_not_found_and_terminating_it_is_harmless(
    adapter: FluenceAdapter,
) -> None:
    for handle in ("container:inst_missing", "vm:inst_missing", "pod:inst_missing"):
        with pytest.raises(ProviderRefused) as missing:
            adapter.status(handle)
        assert missing.value.reason == "not_found"
        assert adapter.terminate(handle).status is InstanceStatus.TERMINATED


@pytest.mark.parametrize("key", [None, ""])
def test_a_missing_key_is_unauthorized_at_the_provider_scope(
    server: RunningServer, key: str | None
) -> None:
    keyless = make_adapter(server, api_key=key)
    try:
        offer = offer_of(keyless, InstanceType.CONTAINER)
        with pytest.raises(ProviderRefused) as refused:
            keyless.provision(offer, WEB, "rnt_nokey")
        with pytest.raises(ProviderRefused) as listing:
            keyless.list_instances()
    finally:
        keyless.close()

    assert refused.value.status == 401
    assert refused.value.reason == "unauthorized"
    assert scope_of(refused.value) is Scope.PROVIDER
    assert listing.value.reason == "unauthorized"


def test_a_container_fluence_fails_ends_failed_and_gives_its_place_back(
    adapter: FluenceAdapter, server: RunningServer
) -> None:
    """A deploy with both an SSH key and SSH_PUBKEY (sent around the adapter's own check)."""
    offer = offer_of(adapter, InstanceType.CONTAINER)
    before = [o for o in adapter.list_offers().offers if o.id == offer.id]
    deployed = httpx.post(
        f"{server.url}/gpu/instances/",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={
            "plan_id": offer.ref["plan_id"],
            "name": "rnt_doomed",
            "container_settings": {
                "image": "nginx",
                "expose": [{"port": 80, "protocol": "http"}],
                "env": {"SSH_PUBKEY": KEY},
            },
            "ssh_key": KEY,
        },
    )
    handle = f"container:{deployed.json()['id']}"

    failed = wait_for(adapter, handle, InstanceStatus.FAILED)

    assert (failed.reason, failed.rental_id) == ("FAILED", "rnt_doomed")
    assert adapter.terminate(handle).status is InstanceStatus.FAILED
    assert before and before[0].available


# Reconciliation and the one-shot deploy


def test_list_instances_covers_all_three_families_with_rental_ids(
    adapter: FluenceAdapter,
) -> None:
    container = adapter.provision(offer_of(adapter, InstanceType.CONTAINER), WEB, "rnt_c")
    vm = adapter.provision(offer_of(adapter, InstanceType.VM), SSH, "rnt_v")
    metal = adapter.provision(offer_of(adapter, InstanceType.BAREMETAL), SSH, "rnt_b")
    gone = adapter.provision(offer_of(adapter, InstanceType.VM, 1), SSH, "rnt_gone")
    wait_for(adapter, gone.handle, InstanceStatus.RUNNING)
    adapter.terminate(gone.handle)

    listed = {instance.handle: instance for instance in adapter.list_instances()}

    assert set(listed) == {container.handle, vm.handle, metal.handle}
    assert {i.rental_id for i in listed.values()} == {"rnt_c", "rnt_v", "rnt_b"}
    assert all(i.provider == "fluence" for i in listed.values())


def test_a_deploy_is_sent_once_even_when_the_answer_fails(
    adapter: FluenceAdapter, knobs: SimulatorKnobs, server: RunningServer
) -> None:
    """A retry would have reached the simulator and deployed; the one attempt did not."""
    offer = offer_of(adapter, InstanceType.CONTAINER)
    knobs.fail_next(1, "5xx")

    with pytest.raises(ProviderUnavailable):
        adapter.provision(offer, WEB, "rnt_once")

    assert not knobs.forced
    assert sim_instances(server) == []


def test_an_instance_whose_answer_was_lost_is_found_by_its_rental_id(
    server: RunningServer, knobs: SimulatorKnobs, sim: FluenceState
) -> None:
    impatient = make_adapter(server, timeout_seconds=0.3)
    try:
        offer = offer_of(impatient, InstanceType.VM)
        knobs.accept_delay_seconds = 1.0
        with pytest.raises(ProviderUnavailable, match="timed out"):
            impatient.provision(offer, SSH, "rnt_lost_answer")
        knobs.accept_delay_seconds = 0.0

        found = impatient.list_instances()
    finally:
        impatient.close()

    assert sim.requests["POST /gpu/instances/vms"] == 1
    assert [(i.rental_id, i.handle.partition(":")[0]) for i in found] == [("rnt_lost_answer", "vm")]
