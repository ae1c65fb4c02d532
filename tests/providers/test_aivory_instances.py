"""AIVory rentals, the pure part: rental JSON, workload rules, rent bodies, refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pricing.offer import Offer, Tier
from providers.aivory.instances import parse_rental, rental_endpoint
from providers.aivory.parse import parse_offers
from providers.aivory.refusals import read_refusal
from providers.aivory.workload import check_workload, rent_request
from providers.base import ProviderRefused
from providers.parsing import MalformedItem
from providers.rental import InstanceStatus, UnsupportedWorkload, Workload, WorkloadMode
from tests.providers.support import fixture_loader, listed_offer

load = fixture_loader("aivory")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBroker renter@laptop"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"


CATALOG = parse_offers(load("offers"), datetime(2026, 11, 20, tzinfo=UTC))


def offer(tier: Tier = Tier.SPOT, **ref: str) -> Offer:
    """The documented Quebec RTX 4090, in `tier`, with `ref` laid over its reference."""
    return replace(
        listed_offer(CATALOG, "aivory:vast-ai:rtx-4090:quebec-ca:spot", **ref), tier=tier
    )


# Rental JSON


def test_a_new_rental_is_provisioning_under_its_own_id() -> None:
    rental = parse_rental(load("rental_provisioning"))

    assert rental.provider == "aivory"
    assert rental.handle == "ar_5f2c9e01"
    assert rental.status is InstanceStatus.PROVISIONING
    assert rental.rental_id is None
    assert (rental.reason, rental.ssh, rental.ended_at) == (None, None, None)
    assert rental_endpoint(load("rental_provisioning")) is None


def test_a_running_rental_has_its_endpoint() -> None:
    payload = load("rental_running")

    assert parse_rental(payload).status is InstanceStatus.RUNNING
    assert rental_endpoint(payload) == "https://gpu-ar-5f2c9e01.aivory.net/v1"


def test_a_terminated_rental_with_reason_interrupted_is_an_interruption() -> None:
    rental = parse_rental(load("rental_interrupted"))

    assert rental.status is InstanceStatus.INTERRUPTED
    assert rental.reason == "interrupted"
    assert rental.ended_at == datetime(2026, 11, 20, 11, 15, 30, tzinfo=UTC)


def test_a_plain_termination_tolerates_case_and_an_unreadable_end_time() -> None:
    rental = parse_rental(load("rental_terminated"))

    assert rental.handle == "ar_77aa0c3d"
    assert rental.status is InstanceStatus.TERMINATED
    assert rental.reason is None
    assert rental.ended_at is None


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "running"},
        {"rental_id": "ar_1"},
        {"rental_id": "ar_1", "status": "paused"},
        {"rental_id": "", "status": "running"},
    ],
)
def test_a_rental_without_an_id_or_a_known_status_is_malformed(payload: dict[str, Any]) -> None:
    with pytest.raises(MalformedItem):
        parse_rental(payload)


# Workload rules and rent bodies


def test_a_model_rental_names_the_offer_its_tier_and_the_model() -> None:
    workload = Workload(mode=WorkloadMode.MODEL, model=LLAMA, ssh_key=KEY)

    check_workload(offer(), workload)

    assert rent_request(offer(), workload) == {
        "gpu_model": "RTX 4090",
        "provider_id": "vast-ai",
        "region": "Quebec, CA",
        "spot": True,
        "fine_tuned": False,
        "model_id": LLAMA,
        "ssh_key": KEY,
    }


def test_a_custom_image_rents_the_on_demand_twin_with_its_image() -> None:
    workload = Workload(image="vllm/vllm-openai:latest")

    body = rent_request(offer(Tier.ON_DEMAND), workload)

    assert body["spot"] is False
    assert body["docker_image"] == "vllm/vllm-openai:latest"
    assert "model_id" not in body and "ssh_key" not in body


@pytest.mark.parametrize(
    ("workload", "field", "words"),
    [
        (Workload(mode=WorkloadMode.SSH, ssh_key=KEY), "mode", "OpenAI-compatible"),
        (Workload(mode=WorkloadMode.TEMPLATE, template="jupyter"), "mode", "mode template"),
        (Workload(mode=WorkloadMode.MODEL, model=LLAMA, ports=(8000,)), "ports", "own"),
        (Workload(image="x", env={"A": "1"}), "env", "environment"),
        (Workload(mode=WorkloadMode.MODEL), "model", "model"),
        (Workload(mode=WorkloadMode.CUSTOM), "image", "image"),
    ],
)
def test_unsupported_workloads_name_their_field(workload: Workload, field: str, words: str) -> None:
    with pytest.raises(UnsupportedWorkload) as unsupported:
        check_workload(offer(), workload)

    assert unsupported.value.field == field
    assert words in unsupported.value.message


def test_a_rent_request_refuses_an_unrunnable_workload_or_a_bare_offer() -> None:
    with pytest.raises(ProviderRefused) as unrunnable:
        rent_request(offer(), Workload(mode=WorkloadMode.SSH, ssh_key=KEY))
    with pytest.raises(ProviderRefused) as bare:
        rent_request(offer(provider_id=""), Workload(image="x"))

    assert unrunnable.value.reason == "refused"
    assert bare.value.reason == "refused"
    assert "provider_id" in bare.value.message


# Refusals


def refusal(status: int, body: object) -> ProviderRefused:
    request = httpx.Request("POST", "https://api.aivory.net/v1/gpu/rent")
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return read_refusal(httpx.Response(status, content=content, request=request))


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (402, "insufficient_credit", "insufficient_funds"),
        (409, "offer_unavailable", "offer_gone"),
        (409, None, "offer_gone"),
        (409, "no_capacity", "no_capacity"),
        (409, "conflict", "conflict"),
        (401, "unauthorized", "unauthorized"),
        (403, None, "unauthorized"),
        (404, "not_found", "not_found"),
        (400, "invalid_request", "refused"),
        (418, "teapot", "refused"),
    ],
)
def test_codes_and_statuses_map_to_the_brokers_reasons(
    status: int, code: str | None, reason: str
) -> None:
    error: dict[str, str] = {"message": "said no"}
    if code is not None:
        error["code"] = code

    refused = refusal(status, {"error": error})

    assert (refused.reason, refused.status) == (reason, status)
    assert refused.message == "refused the request: said no"


def test_a_body_without_an_error_object_names_the_status() -> None:
    refused = refusal(402, "<html>Payment Required</html>")

    assert (refused.reason, refused.message) == (
        "insufficient_funds",
        "refused the request: status 402",
    )
