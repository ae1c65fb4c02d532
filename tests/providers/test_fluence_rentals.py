"""Fluence rentals: what is particular to Fluence, against its simulator over real HTTP.

The lifecycle, refusals, unknown handles, keys, the single deploy attempt and interruption rules
every provider shares are in `test_rental_conformance.py`, with a container as the plain rental;
here are Fluence's own: a container only terminable once active and served on its own port, VMs
and bare metal reached over SSH, capacity per plan, OS images, failed containers, three families
listed together, and the instance a lost answer leaves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from pricing.offer import InstanceType, Offer
from providers.base import ProviderRefused, ProviderUnavailable
from providers.fluence.adapter import FluenceAdapter
from providers.rental import (
    InstanceStatus,
    NotSupported,
    Scope,
    SshAccess,
    Upstream,
    Workload,
    WorkloadMode,
    scope_of,
)
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, fill, wait_for

API_KEY = "fl_rental_key_do_not_leak"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker renter@laptop"
WEB = Workload(image="nginx:1.27", ports=(8000,))
SSH = Workload(mode=WorkloadMode.SSH, ssh_key=KEY)
pytestmark = pytest.mark.provider("fluence", api_key=API_KEY)


def offer_of(adapter: FluenceAdapter, kind: InstanceType, n: int = 0) -> Offer:
    """The `n`-th available offer of `kind` in the live catalog."""
    offers = [o for o in adapter.list_offers().offers if o.instance_type is kind and o.available]
    assert len(offers) > n, f"fewer than {n + 1} available {kind} offers"
    return offers[n]


# The lifecycle


def test_a_container_terminates_only_once_active_and_serves_on_its_own_port(
    adapter: FluenceAdapter, knobs: SimulatorKnobs, sim: Any, provider: SimulatedProvider
) -> None:
    knobs.provision_seconds = 60
    offer = offer_of(adapter, InstanceType.CONTAINER)

    created = adapter.provision(offer, WEB, "rnt_lifecycle")

    assert sim.last_authorization == f"Bearer {API_KEY}"
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
    assert upstream.base_url != provider.url  # the container's own forwarded port
    served = httpx.get(f"{upstream.base_url}/v1/models")
    assert served.status_code == 200 and served.json()["data"][0]["owned_by"] == "fluence"

    assert adapter.terminate(created.handle).status is InstanceStatus.TERMINATED
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{upstream.base_url}/v1/models")
    assert [(i["name"], i["status"]) for i in provider.instances()] == [
        ("rnt_lifecycle", "TERMINATED")
    ]


def test_an_http_port_is_exposed_as_http_and_preferred_upstream(
    adapter: FluenceAdapter, provider: SimulatedProvider
) -> None:
    created = adapter.provision(
        offer_of(adapter, InstanceType.CONTAINER),
        Workload(image="nginx:1.27", ports=(8000, 80)),
        "rnt_http",
    )
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    [listed] = provider.instances()
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
    adapter: FluenceAdapter, provider: SimulatedProvider, kind: InstanceType
) -> None:
    offer = offer_of(adapter, kind)

    created = adapter.provision(offer, SSH, f"rnt_{kind.value}")

    assert created.handle.startswith(f"{kind.value}:inst_")
    assert created.ssh is None
    running = wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    assert running.ssh == SshAccess("127.0.0.1", 22, "root")
    assert adapter.upstream(created.handle) is None
    [listed] = provider.instances()
    assert (listed["plan_id"], listed["os_image"]) == (offer.ref["option_id"], "ubuntu-22.04")
    assert adapter.terminate(created.handle).status is InstanceStatus.TERMINATED


def test_a_vm_cannot_be_stopped_started_or_interrupted(
    adapter: FluenceAdapter, knobs: SimulatorKnobs, provider: SimulatedProvider
) -> None:
    knobs.provision_seconds = 60  # still provisioning at the end, however slow the machine
    created = adapter.provision(offer_of(adapter, InstanceType.VM), SSH, "rnt_nostop")

    with pytest.raises(NotSupported):
        adapter.stop(created.handle)
    with pytest.raises(NotSupported):
        adapter.start(created.handle)
    interrupted = provider.interrupt(created.handle)
    assert interrupted.status_code == 409
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING


# Refusals


def test_exhausted_capacity_is_no_capacity_until_an_instance_is_terminated(
    adapter: FluenceAdapter,
) -> None:
    offer = offer_of(adapter, InstanceType.CONTAINER)

    def plan_offers() -> list[Offer]:
        """The catalog's offers of the rented plan, in every location."""
        listed = adapter.list_offers().offers
        return [o for o in listed if o.ref.get("plan_id") == offer.ref["plan_id"]]

    handles = fill(adapter, offer, WEB)

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


def test_a_container_fluence_fails_ends_failed_and_gives_its_place_back(
    adapter: FluenceAdapter, provider: SimulatedProvider
) -> None:
    """A deploy with both an SSH key and SSH_PUBKEY (sent around the adapter's own check)."""
    offer = offer_of(adapter, InstanceType.CONTAINER)
    before = [o for o in adapter.list_offers().offers if o.id == offer.id]
    deployed = httpx.post(
        f"{provider.url}/gpu/instances/",
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


def test_an_instance_whose_answer_was_lost_is_found_by_its_rental_id(
    provider: SimulatedProvider, knobs: SimulatorKnobs, sim: Any
) -> None:
    impatient = provider.adapter(timeout_seconds=0.3)
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
