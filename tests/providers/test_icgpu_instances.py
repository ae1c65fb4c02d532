"""IC GPU rentals, the pure part: instance pages, workload rules and create bodies.

What its recorded instances and error answers read as is checked in `test_parsing.py`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pricing.offer import Offer
from providers.icgpu.instances import parse_instance, parse_page
from providers.icgpu.parse import parse_tiers
from providers.icgpu.workload import check_workload, create_request, idempotency_key
from providers.parsing import MalformedItem
from providers.rental import InstanceStatus, Workload, WorkloadMode
from tests.providers import support
from tests.providers.support import fixture_loader, listed_offer

load = fixture_loader("icgpu")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker renter@laptop"
SSH = Workload(mode=WorkloadMode.SSH, ssh_key=KEY)


TIERS = parse_tiers(load("tiers"), datetime(2026, 11, 20, tzinfo=UTC))


def offer(**ref: str) -> Offer:
    """The dedicated H100's batch offer in eu-west, with `ref` laid over its reference."""
    return listed_offer(TIERS, "icgpu:dedicated:h100-80gb:eu-west:batch", **ref)


# Instance JSON


def test_a_page_maps_every_status_skips_the_unreadable_and_keeps_the_token() -> None:
    page = parse_page(load("instances_page"))

    statuses = {instance.handle: instance.status for instance in page.instances}
    assert statuses == {
        "inst-abc123": InstanceStatus.RUNNING,
        "inst-cde345": InstanceStatus.STOPPED,
        "inst-def456": InstanceStatus.PROVISIONING,
        "inst-efa567": InstanceStatus.FAILED,
        "inst-fab678": InstanceStatus.TERMINATED,
        "inst-abd789": InstanceStatus.RUNNING,
    }
    by_id = {instance.handle: instance for instance in page.instances}
    assert by_id["inst-efa567"].reason == "error"
    assert by_id["inst-efa567"].rental_id == "my-notebook"
    # An out-of-range port drops the SSH details, not the instance.
    assert by_id["inst-abd789"].ssh is None
    assert page.next_token == "eyJvZmZzZXQiOiA5fQ=="
    assert len(page.skipped) == 3
    assert "missing field 'id'" in page.skipped[0]
    assert "hibernating" in page.skipped[1]
    assert "not an object" in page.skipped[2]


def test_the_last_page_has_no_token_and_a_wrong_shape_raises() -> None:
    assert parse_page({"instances": [], "nextToken": None}).next_token is None
    with pytest.raises(MalformedItem):
        parse_page({"items": []})
    with pytest.raises(MalformedItem):
        parse_instance({"id": "inst-1", "status": "sleeping"})


# Workload rules and create bodies


def test_an_ssh_workload_creates_the_offers_tier_and_workload_type() -> None:
    check_workload(offer(), SSH)

    assert create_request(offer(), SSH, "rnt_1") == {
        "name": "rnt_1",
        "tier": "dedicated",
        "gpu_model": "H100 80GB",
        "ssh_key": KEY,
        "workload_type": "batch",
        "storage_gb": 50,
    }


def test_the_idempotency_key_ties_the_rental_to_the_offer() -> None:
    """A retried start replays; the same rental recovered on another offer starts anew."""
    interactive = replace(offer(), id="icgpu:dedicated:h100-80gb:eu-west:interactive")

    assert idempotency_key("rnt_1", offer()) == "rnt_1:icgpu:dedicated:h100-80gb:eu-west:batch"
    assert idempotency_key("rnt_1", offer()) == idempotency_key("rnt_1", offer())
    assert idempotency_key("rnt_1", interactive) != idempotency_key("rnt_1", offer())
    assert idempotency_key("rnt_2", offer()) != idempotency_key("rnt_1", offer())


@pytest.mark.parametrize(
    ("workload", "field", "words"),
    [
        (Workload(mode=WorkloadMode.SSH, ssh_key=KEY, ports=(8000,)), "ports", "SSH-only tier"),
        (Workload(image="pytorch/pytorch", ports=()), "image", "SSH-only"),
        (Workload(mode=WorkloadMode.SSH, ssh_key=KEY, env={"A": "1"}), "env", "SSH-only"),
        (Workload(mode=WorkloadMode.MODEL, model="m"), "mode", "mode ssh"),
        (Workload(mode=WorkloadMode.TEMPLATE, template="jupyter"), "mode", "template"),
        (Workload(mode=WorkloadMode.SSH), "ssh_key", "ssh_key"),
    ],
)
def test_unsupported_workloads_name_their_field(workload: Workload, field: str, words: str) -> None:
    support.assert_unsupported(lambda: check_workload(offer(), workload), field, words)


def test_a_create_request_refuses_an_unrunnable_workload_or_a_bare_offer() -> None:
    support.assert_body_refused(
        lambda: create_request(offer(), Workload(mode=WorkloadMode.SSH), "rnt_1"),
        lambda: create_request(offer(workload_type=""), SSH, "rnt_1"),
        "workload_type",
    )
