"""AIVory rentals, the pure part: rental JSON, workload rules and rent bodies.

What its recorded rentals and error answers read as is checked in `test_parsing.py`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from pricing.offer import Offer, Tier
from providers.aivory.instances import parse_rental, rental_endpoint
from providers.aivory.parse import parse_offers
from providers.aivory.workload import check_workload, rent_request
from providers.parsing import MalformedItem
from providers.rental import Workload, WorkloadMode
from tests.providers import support
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


def test_only_a_running_rental_names_its_endpoint() -> None:
    assert rental_endpoint(load("rental_provisioning")) is None
    assert rental_endpoint(load("rental_running")) == "https://gpu-ar-5f2c9e01.aivory.net/v1"


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
    support.assert_unsupported(lambda: check_workload(offer(), workload), field, words)


def test_a_rent_request_refuses_an_unrunnable_workload_or_a_bare_offer() -> None:
    support.assert_body_refused(
        lambda: rent_request(offer(), Workload(mode=WorkloadMode.SSH, ssh_key=KEY)),
        lambda: rent_request(offer(provider_id=""), Workload(image="x")),
        "provider_id",
    )
