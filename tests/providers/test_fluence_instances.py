"""Fluence rentals, the pure part: instance JSON, handles and workload rules.

What its recorded instances and error answers read as is checked in `test_parsing.py`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pricing.offer import InstanceType, Offer
from providers.base import ProviderRefused
from providers.fluence.instances import (
    Family,
    container_address,
    make_handle,
    parse_instance_list,
    parse_ssh_connection,
    split_handle,
)
from providers.fluence.parse import parse_container_plans
from providers.fluence.workload import check_workload, deploy_request, expose
from providers.parsing import MalformedItem
from providers.rental import InstanceStatus, SshAccess, UnsupportedWorkload, Workload, WorkloadMode
from tests.providers.support import fixture_loader, listed_offer

load = fixture_loader("fluence")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker renter@laptop"


PLANS = parse_container_plans(load("container_plans"), datetime(2026, 11, 20, tzinfo=UTC))
MACHINE_REF = {"option_id": "opt_a100x8_fi", "os_image": "ubuntu-22.04", "location_id": "loc_fi1"}


def offer(instance_type: InstanceType, **ref: str) -> Offer:
    """The documented Paris H100 plan; as a VM or bare metal, it carries a machine option's ref."""
    paris = listed_offer(PLANS, "fluence:plan:plan-h100x1:loc-fr1", **ref)
    if instance_type is InstanceType.CONTAINER:
        return paris
    machine = f"fluence:{instance_type.value}:x"
    return replace(paris, id=machine, instance_type=instance_type, ref={**MACHINE_REF, **ref})


CONTAINER = offer(InstanceType.CONTAINER)
VM = offer(InstanceType.VM)
BAREMETAL = offer(InstanceType.BAREMETAL)


# Instance JSON


def test_an_active_container_is_reached_over_its_http_forward() -> None:
    # The http forward wins over an earlier tcp one; its external port may come as a string.
    assert container_address(load("container_instance_active")) == (
        "http://inst-c0ffee01.fluence.dev:80"
    )


def test_a_container_without_an_http_forward_is_reached_over_its_first_tcp_forward() -> None:
    payload = load("container_instance_active")
    payload["network"]["forwarded_ports"] = [
        {"internal": 9000, "external": 31999, "protocol": "udp"},
        {"internal": 8000, "external": 31022, "protocol": "TCP"},
    ]

    assert container_address(payload) == "http://inst-c0ffee01.fluence.dev:31022"


def test_a_pending_container_has_no_address_yet() -> None:
    assert container_address(load("container_instance_pending")) is None


def test_a_listing_maps_every_status_and_skips_what_it_cannot_read() -> None:
    listed, skipped = parse_instance_list(load("vm_instances"), Family.BAREMETAL)

    by_id = {instance.handle: instance for instance in listed}
    assert [instance.handle for instance in listed] == [
        "baremetal:inst_vm000001",
        "baremetal:inst_vm000002",
        "baremetal:inst_vm000003",
        "baremetal:inst_vm000004",
        "baremetal:inst_vm000005",
    ]
    assert by_id["baremetal:inst_vm000002"].status is InstanceStatus.PROVISIONING
    assert by_id["baremetal:inst_vm000002"].ssh is None
    assert by_id["baremetal:inst_vm000003"].status is InstanceStatus.TERMINATED
    failed = by_id["baremetal:inst_vm000004"]
    assert (failed.status, failed.reason) == (InstanceStatus.FAILED, "FAILED")
    assert failed.ssh == SshAccess("198.51.100.4", 22, "root")
    # An unreadable ssh_connection does not hide the instance, only its SSH access.
    assert by_id["baremetal:inst_vm000005"].ssh is None
    assert len(skipped) == 3
    assert "missing field 'id'" in skipped[0]
    assert "REBOOTING" in skipped[1]
    assert "not an object" in skipped[2]


def test_a_listing_may_come_wrapped_and_a_wrong_shape_raises() -> None:
    wrapped = {"instances": load("vm_instances")[:2]}

    listed, skipped = parse_instance_list(wrapped, Family.VM)

    assert [instance.rental_id for instance in listed] == ["rnt_Vm11a", "rnt_Vm22b"]
    assert skipped == []
    with pytest.raises(MalformedItem):
        parse_instance_list({"detail": "maintenance"}, Family.VM)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ssh root@1.2.3.4 -p 22", SshAccess("1.2.3.4", 22, "root")),
        ("ssh -p 2022 ubuntu@host.example", SshAccess("host.example", 2022, "ubuntu")),
        ("root@10.0.0.9", SshAccess("10.0.0.9", 22, "root")),
    ],
)
def test_ssh_connection_strings_are_read_in_any_order(text: str, expected: SshAccess) -> None:
    assert parse_ssh_connection(text) == expected


@pytest.mark.parametrize("text", ["ssh", "ssh root@h -p 0", "ssh root@h -p x", ""])
def test_unreadable_ssh_connections_are_malformed(text: str) -> None:
    with pytest.raises(MalformedItem):
        parse_ssh_connection(text)


def test_handles_name_the_family_and_foreign_ones_are_rejected() -> None:
    assert make_handle(Family.BAREMETAL, "inst_1") == "baremetal:inst_1"
    assert split_handle("vm:inst_1") == (Family.VM, "inst_1")
    assert split_handle("container:inst:with:colons") == (Family.CONTAINER, "inst:with:colons")
    for foreign in ("inst_1", "pod:inst_1", "vm:", ""):
        assert split_handle(foreign) is None


# Workload rules and deploy bodies


def test_a_custom_container_deploys_with_port_80_as_http_and_the_rest_as_tcp() -> None:
    workload = Workload(image="nginx:1.27", ports=(8000, 80), env={"A": "1"}, ssh_key=KEY)

    check_workload(CONTAINER, workload)
    family, body = deploy_request(CONTAINER, workload, "rnt_1")

    assert family is Family.CONTAINER
    assert body == {
        "plan_id": "plan_h100x1",
        "name": "rnt_1",
        "location": "loc_fr1",
        "container_settings": {
            "image": "nginx:1.27",
            "expose": [{"port": 8000, "protocol": "tcp"}, {"port": 80, "protocol": "http"}],
            "env": {"A": "1"},
        },
        "ssh_key": KEY,
    }
    assert expose(()) == []


@pytest.mark.parametrize("instance_type", [InstanceType.VM, InstanceType.BAREMETAL])
def test_a_machine_deploys_with_its_option_os_image_and_key(instance_type: InstanceType) -> None:
    machine = offer(instance_type)
    workload = Workload(mode=WorkloadMode.SSH, ssh_key=KEY)

    check_workload(machine, workload)
    family, body = deploy_request(machine, workload, "rnt_2")

    assert family.value == instance_type.value
    assert body == {
        "plan_id": "opt_a100x8_fi",
        "name": "rnt_2",
        "ssh_key": KEY,
        "os_image": "ubuntu-22.04",
    }


@pytest.mark.parametrize(
    ("target", "workload", "field", "words"),
    [
        (CONTAINER, Workload(mode=WorkloadMode.MODEL, model="m"), "mode", "mode model"),
        (CONTAINER, Workload(mode=WorkloadMode.TEMPLATE, template="jupyter"), "mode", "custom"),
        (CONTAINER, Workload(mode=WorkloadMode.SSH, ssh_key=KEY), "mode", "VM"),
        (CONTAINER, Workload(ports=(80,)), "image", "image"),
        (CONTAINER, Workload(image="x"), "ports", "at least one"),
        (CONTAINER, Workload(image="x", ports=tuple(range(8000, 8011))), "ports", "at most 10"),
        (CONTAINER, Workload(image="x", ports=(80, 80)), "ports", "more than once"),
        (CONTAINER, Workload(image="x", ports=(70000,)), "ports", "65535"),
        (
            CONTAINER,
            Workload(image="x", ports=(80,), env={f"V{n}": "1" for n in range(65)}),
            "env",
            "at most 64",
        ),
        (
            CONTAINER,
            Workload(image="x", ports=(80,), env={"SSH_PUBKEY": "k"}, ssh_key=KEY),
            "env",
            "reserved",
        ),
        (VM, Workload(mode=WorkloadMode.SSH, ssh_key=KEY, ports=(22,)), "ports", "SSH-only"),
        (VM, Workload(image="ubuntu", ssh_key=KEY), "image", "SSH-only"),
        (BAREMETAL, Workload(mode=WorkloadMode.SSH, ssh_key=KEY, env={"A": "1"}), "env", "SSH"),
        (BAREMETAL, Workload(mode=WorkloadMode.MODEL, model="m"), "mode", "SSH-only"),
        (VM, Workload(mode=WorkloadMode.SSH), "ssh_key", "ssh_key"),
    ],
)
def test_unsupported_workloads_name_their_field(
    target: Offer, workload: Workload, field: str, words: str
) -> None:
    with pytest.raises(UnsupportedWorkload) as unsupported:
        check_workload(target, workload)

    assert unsupported.value.field == field
    assert words in unsupported.value.message


def test_sixty_four_env_vars_and_ten_ports_are_within_the_limits() -> None:
    check_workload(
        CONTAINER,
        Workload(image="x", ports=tuple(range(8000, 8010)), env={f"V{n}": "1" for n in range(64)}),
    )
    check_workload(CONTAINER, Workload(image="x", ports=(80,), env={"SSH_PUBKEY": "k"}))


def test_a_deploy_request_refuses_an_unrunnable_workload_or_a_bare_offer() -> None:
    with pytest.raises(ProviderRefused) as unrunnable:
        deploy_request(VM, Workload(image="x"), "rnt_1")
    with pytest.raises(ProviderRefused) as bare:
        deploy_request(
            offer(InstanceType.CONTAINER, plan_id=""), Workload(image="x", ports=(80,)), "r"
        )

    assert unrunnable.value.reason == "refused"
    assert "SSH-only" in unrunnable.value.message
    assert bare.value.reason == "refused"
    assert "plan_id" in bare.value.message
