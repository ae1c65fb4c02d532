"""ComputeGPU rentals, the pure part: handles, instance JSON, workloads, deploy bodies, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pricing.offer import InstanceType, Offer, Tier
from providers.base import MalformedResponse, ProviderRefused
from providers.computegpu.instances import (
    make_handle,
    parse_pod,
    parse_pod_list,
    parse_rent_response,
    parse_rental,
    parse_rental_list,
    read_refusal,
    refusal_reason,
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
    InstanceStatus,
    SshAccess,
    UnsupportedWorkload,
    Workload,
    WorkloadMode,
)
from tests.providers.support import fixture_loader

load = fixture_loader("computegpu")
RENTAL_KEY = "9f2c4e6a8b0d1f3a5c7e9b1d3f5a7c9e"


def make_offer(tier: Tier = Tier.ON_DEMAND, price: int = 510_000, **ref: str) -> Offer:
    return Offer(
        id="computegpu:test",
        provider="computegpu",
        gpu="RTX 4090",
        gpu_count=int(ref.get("gpu_count", "1")),
        vram_gb=24,
        base_price_per_gpu_hour=price,
        tier=tier,
        region="Global",
        instance_type=InstanceType.CONTAINER,
        available=True,
        available_count=None,
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


# --- marketplace rentals -------------------------------------------------------------------------


def test_a_rented_listing_runs_at_once_with_its_own_key() -> None:
    reading = parse_rent_response(load("rent.json"))

    assert reading.instance.handle == "listing:rnt_5b2d8e"
    assert reading.instance.status is InstanceStatus.RUNNING
    assert reading.instance.rental_id is None
    assert reading.access is not None
    assert reading.access.endpoint == "/api/v1/ollama/rnt_5b2d8e"
    assert reading.access.api_key == RENTAL_KEY
    assert RENTAL_KEY not in repr(reading)


def test_rental_detail_and_stop_responses() -> None:
    active = parse_rental(load("rental_active.json"))
    stopped = parse_rental(load("rental_stopped.json"))

    assert (active.instance.status, active.instance.ended_at) == (InstanceStatus.RUNNING, None)
    assert active.access is not None and active.access.api_key == RENTAL_KEY
    assert stopped.instance.status is InstanceStatus.TERMINATED
    assert stopped.instance.ended_at == datetime(2026, 11, 20, 10, 49, 10, tzinfo=UTC)
    assert stopped.access is None


def test_a_rental_the_host_took_back_is_interrupted() -> None:
    instance = parse_rental(load("rental_preempted.json")).instance

    assert (instance.status, instance.reason) == (InstanceStatus.INTERRUPTED, "preempted")
    assert instance.ended_at == datetime(2026, 11, 20, 10, 6, tzinfo=UTC)


def test_the_rental_list() -> None:
    instances = parse_rental_list(load("rentals.json"))

    assert [(item.handle, item.status) for item in instances] == [
        ("listing:rnt_5b2d8e", InstanceStatus.RUNNING),
        ("listing:rnt_0000aa", InstanceStatus.TERMINATED),
    ]


# --- pods ----------------------------------------------------------------------------------------


def test_the_documented_deploy_response_is_a_provisioning_pod() -> None:
    reading = parse_pod(load("pod_deploying.json"))

    assert reading.instance.handle == "pod:68abc123def456"
    assert reading.instance.status is InstanceStatus.PROVISIONING
    assert (reading.access, reading.instance_type) == (None, "ollama")


def test_a_running_pod_has_its_endpoint_and_key() -> None:
    reading = parse_pod(load("pod_running.json"))

    assert reading.instance.status is InstanceStatus.RUNNING
    assert reading.access is not None
    assert reading.access.endpoint == "/api/v1/ollama/68abc123def456"
    assert reading.access.api_key == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_an_ssh_pod_exposes_its_ssh_access() -> None:
    reading = parse_pod(load("pod_ssh.json"))

    assert reading.instance_type == "ssh"
    assert reading.access is None
    assert reading.instance.ssh == SshAccess(host="ssh.computegpu.com", port=22017, user="root")
    assert reading.instance.ssh.command == "ssh root@ssh.computegpu.com -p 22017"


def test_preempted_and_destroyed_pods() -> None:
    preempted = parse_pod(load("pod_preempted.json")).instance
    destroyed = parse_pod(load("pod_destroyed.json")).instance

    assert (preempted.status, preempted.reason) == (InstanceStatus.INTERRUPTED, "preempted")
    assert preempted.ended_at == datetime(2026, 4, 30, 16, 12, tzinfo=UTC)
    assert (destroyed.status, destroyed.reason) == (InstanceStatus.TERMINATED, None)
    assert destroyed.ended_at == datetime(2026, 4, 30, 15, 48, tzinfo=UTC)


def test_the_pod_list() -> None:
    instances = parse_pod_list(load("pods.json"))

    assert [(item.handle, item.status) for item in instances] == [
        ("pod:68abc123def456", InstanceStatus.RUNNING),
        ("pod:68abc999aaa000", InstanceStatus.INTERRUPTED),
        ("pod:68ff00aa11bb22", InstanceStatus.STOPPED),
    ]


def test_an_unknown_status_is_malformed_not_a_guess() -> None:
    with pytest.raises(MalformedResponse) as raised:
        parse_pod(load("pod_unknown_status.json"))

    assert "migrating" in raised.value.message


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


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "context", "reason"),
    [
        (401, "Unauthorized", "deploy", "unauthorized"),
        (402, "Insufficient wallet balance", "rent", "insufficient_funds"),
        (402, "Insufficient wallet balance", "deploy", "insufficient_funds"),
        (404, "Listing not found.", "rent", "offer_gone"),
        (404, "Unknown GPU type: X.", "deploy", "offer_gone"),
        (404, "Instance not found.", "instance", "not_found"),
        (409, "Insufficient capacity for 8x RTX 4090.", "deploy", "no_capacity"),
        (409, "GPU type sold out", "deploy", "no_capacity"),
        (409, "Listing is not available.", "rent", "offer_gone"),
        (409, "Bid is below the current spot price of 0.3.", "deploy", "conflict"),
        (409, "Another deploy is already in progress.", "rent", "conflict"),
        (409, "Instance is destroyed.", "instance", "conflict"),
        (400, "gpuCount must be between 1 and 8.", "deploy", "refused"),
    ],
)
def test_refusals_in_the_brokers_words(
    status: int, message: str, context: str, reason: str
) -> None:
    assert refusal_reason(status, message, context) == reason


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("POST", "/api/v1/marketplace/rent/lst_1", "offer_gone"),
        ("POST", "/api/v1/gpu/deploy", "offer_gone"),
        ("POST", "/api/v1/gpu/deploy-spot", "offer_gone"),
        ("GET", "/api/v1/gpu/pods/68ab", "not_found"),
        ("POST", "/api/v1/marketplace/rentals/rnt_1/stop", "not_found"),
    ],
)
def test_a_404_reads_by_what_was_asked(method: str, path: str, reason: str) -> None:
    request = httpx.Request(method, f"https://computegpu.com{path}")

    refusal = read_refusal(httpx.Response(404, json={"error": "Not found."}, request=request))

    assert (refusal.reason, refusal.status) == (reason, 404)
    assert refusal.message == "refused the request: Not found."


def test_a_refusal_without_a_json_body_still_has_a_reason() -> None:
    request = httpx.Request("POST", "https://computegpu.com/api/v1/gpu/deploy")

    refusal = read_refusal(httpx.Response(402, content=b"<html>", request=request))

    assert (refusal.reason, refusal.message) == (
        "insufficient_funds",
        "refused the request: status 402",
    )
