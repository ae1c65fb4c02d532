"""ComputeGPU rentals, the pure part: handles, access, workloads and deploy bodies.

What its recorded rentals, pods and error answers read as is checked in `test_parsing.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pricing.offer import Offer, Tier
from providers.base import MalformedResponse, ProviderRefused
from providers.computegpu.instances import (
    make_handle,
    parse_pod,
    parse_rent_response,
    parse_rental,
    split_handle,
)
from providers.computegpu.workload import (
    DEPLOY_PATH,
    DEPLOY_SPOT_PATH,
    check_workload,
    deploy_request,
    same_model,
)
from providers.rental import (
    UnsupportedWorkload,
    Workload,
    WorkloadMode,
)
from tests.catalog_data import offer as catalog_offer
from tests.providers.support import fixture_loader

load = fixture_loader("computegpu")
RENTAL_KEY = "9f2c4e6a8b0d1f3a5c7e9b1d3f5a7c9e"


def make_offer(tier: Tier = Tier.ON_DEMAND, price: int = 510_000, **ref: str) -> Offer:
    return catalog_offer(
        "computegpu:test",
        "computegpu",
        "RTX 4090",
        price,
        gpu_count=int(ref.get("gpu_count", "1")),
        tier=tier,
        region="Global",
        updated_at=datetime(2026, 11, 20, tzinfo=UTC),
        ref=dict(ref),
    )


LISTING = make_offer(
    family="listing", listing_id="lst_1", instance_type="ollama", ollama_models="llama3,qwen2.5"
)
OPEN_LISTING = make_offer(family="listing", listing_id="lst_2", instance_type="ollama")
DOCKER_LISTING = make_offer(family="listing", listing_id="lst_3", instance_type="docker")
POD = make_offer(family="cloud", gpu_type="RTX 4090", gpu_count="2", tier="on_demand")
SPOT_POD = make_offer(Tier.SPOT, 260_000, family="cloud", gpu_type="RTX 4090", gpu_count="1")


# --- handles -------------------------------------------------------------------------------------


def test_handles_carry_the_family_and_the_id() -> None:
    assert make_handle("listing", "rnt_1") == "listing:rnt_1"
    assert split_handle("pod:68abc123def456") == ("pod", "68abc123def456")


@pytest.mark.parametrize("handle", ["", "rnt_1", "vm:1", "pod:", "pod:a/b", "listing: "])
def test_a_handle_of_no_family_names_no_instance(handle: str) -> None:
    with pytest.raises(ProviderRefused) as raised:
        split_handle(handle)

    assert raised.value.reason == "not_found"


# --- access: what a rental or pod hands out ---------------------------------------------------


def test_a_rented_listing_hands_out_its_own_key() -> None:
    reading = parse_rent_response(load("rent.json"))

    assert reading.access is not None
    assert reading.access.endpoint == "/api/v1/ollama/rnt_5b2d8e"
    assert reading.access.api_key == RENTAL_KEY
    assert RENTAL_KEY not in repr(reading)


def test_an_active_rental_keeps_its_key_and_a_stopped_one_has_none() -> None:
    active = parse_rental(load("rental_active.json"))
    stopped = parse_rental(load("rental_stopped.json"))

    assert active.access is not None and active.access.api_key == RENTAL_KEY
    assert stopped.access is None


def test_a_pod_says_how_it_is_reached() -> None:
    deploying, running, ssh = (
        parse_pod(load(f"pod_{n}.json")) for n in ("deploying", "running", "ssh")
    )

    assert (deploying.access, deploying.instance_type) == (None, "ollama")
    assert running.access is not None
    assert running.access.endpoint == "/api/v1/ollama/68abc123def456"
    assert running.access.api_key == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert (ssh.access, ssh.instance_type) == (None, "ssh")


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"id": "68ab", "status": "running"},
        {"instance": []},
        {"instance": {"status": "running"}},
        {"instance": {"id": "68ab", "status": "running", "ssh": {"host": "h", "port": "x"}}},
        {"instance": {"id": "68ab", "status": "destroyed", "endedAt": "soon"}},
    ],
)
def test_a_pod_that_is_not_the_documented_shape_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_pod(payload)


@pytest.mark.parametrize(
    "payload",
    [{"rentalId": "rnt_1"}, {"rentalId": "rnt_1", "status": "paused"}, {"status": "active"}],
)
def test_a_rent_response_that_is_not_the_documented_shape_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_rent_response(payload)


# --- workloads and deploy bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "workload"),
    [
        (LISTING, Workload(mode=WorkloadMode.MODEL, model="llama3")),
        (LISTING, Workload(mode=WorkloadMode.MODEL, model="Qwen2.5:latest")),
        (OPEN_LISTING, Workload(mode=WorkloadMode.MODEL, model="anything")),
        (POD, Workload(mode=WorkloadMode.MODEL, model="llama3.3")),
        (POD, Workload(image="pytorch/pytorch", env={"A": "b"})),
        (POD, Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAA")),
        (POD, Workload(mode=WorkloadMode.SSH)),
    ],
)
def test_valid_workloads_pass(offer: Offer, workload: Workload) -> None:
    check_workload(offer, workload)


@pytest.mark.parametrize(
    ("offer", "workload", "field"),
    [
        (LISTING, Workload(image="pytorch/pytorch"), "image"),
        (LISTING, Workload(mode=WorkloadMode.MODEL, model="llama3", ports=(80,)), "ports"),
        (LISTING, Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAA"), "mode"),
        (LISTING, Workload(mode=WorkloadMode.TEMPLATE, template="ollama"), "mode"),
        (LISTING, Workload(mode=WorkloadMode.MODEL), "model"),
        (LISTING, Workload(mode=WorkloadMode.MODEL, model="mistral"), "model"),
        (LISTING, Workload(mode=WorkloadMode.MODEL, model="llama3", env={"A": "b"}), "env"),
        (DOCKER_LISTING, Workload(mode=WorkloadMode.MODEL, model="llama3"), "mode"),
        (POD, Workload(mode=WorkloadMode.TEMPLATE, template="jupyter"), "mode"),
        (POD, Workload(mode=WorkloadMode.MODEL), "model"),
        (POD, Workload(mode=WorkloadMode.CUSTOM), "image"),
        (POD, Workload(image="pytorch/pytorch", ports=(8000,)), "ports"),
        (POD, Workload(mode=WorkloadMode.MODEL, model="llama3", image="x"), "image"),
        (POD, Workload(mode=WorkloadMode.SSH, image="x"), "image"),
    ],
)
def test_invalid_workloads_name_the_field_at_fault(
    offer: Offer, workload: Workload, field: str
) -> None:
    with pytest.raises(UnsupportedWorkload) as raised:
        check_workload(offer, workload)

    assert raised.value.field == field


def test_an_offer_of_no_family_is_refused() -> None:
    with pytest.raises(ProviderRefused) as raised:
        check_workload(make_offer(), Workload(mode=WorkloadMode.MODEL, model="llama3"))

    assert raised.value.reason == "refused"


def test_ollama_model_names_match_with_or_without_latest() -> None:
    assert same_model("llama3", "llama3:latest")
    assert same_model("Llama3:latest", "llama3")
    assert not same_model("llama3", "llama3.3")


@pytest.mark.parametrize(
    ("offer", "workload", "path", "body"),
    [
        (
            POD,
            Workload(mode=WorkloadMode.MODEL, model="llama3.3"),
            DEPLOY_PATH,
            {"instanceType": "ollama", "models": ["llama3.3"]},
        ),
        (
            POD,
            Workload(image="pytorch/pytorch", env={"A": "b"}),
            DEPLOY_PATH,
            {"instanceType": "docker", "image": "pytorch/pytorch", "env": {"A": "b"}},
        ),
        (
            POD,
            Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAA"),
            DEPLOY_PATH,
            {"instanceType": "ssh", "sshKey": "ssh-ed25519 AAA"},
        ),
        (
            SPOT_POD,
            Workload(mode=WorkloadMode.MODEL, model="llama3"),
            DEPLOY_SPOT_PATH,
            {"instanceType": "ollama", "models": ["llama3"], "bidPerGpu": 0.26, "gpuCount": 1},
        ),
    ],
)
def test_pod_deploys_send_the_documented_body(
    offer: Offer, workload: Workload, path: str, body: dict[str, Any]
) -> None:
    sent_path, sent = deploy_request(offer, workload)

    assert sent_path == path
    assert sent == {"gpuType": "RTX 4090", "gpuCount": 2, **body}
