"""EmpirioLabs rentals, the pure part: instance JSON, workload checks, deploy bodies, refusals.

What its recorded instances and error answers read as is checked in `test_parsing.py`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from pricing.offer import Offer
from providers.base import MalformedResponse, ProviderRefused
from providers.empiriolabs.instances import (
    check_workload,
    deploy_body,
    parse_instance,
    parse_instance_list,
    refusal_reason,
)
from providers.empiriolabs.parse import parse_catalog
from providers.rental import UnsupportedWorkload, Workload, WorkloadMode
from tests.providers.support import fixture_loader, listed_offer

load = fixture_loader("empiriolabs")


CATALOG = parse_catalog(load("catalog.json"), datetime(2026, 11, 20, tzinfo=UTC))


def make_offer() -> Offer:
    """Two RTX 4090s in the US, as the documented catalog lists them."""
    return listed_offer(CATALOG, "empiriolabs:rtx-4090:us:2x")


# --- instance JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"status": "running"},
        {"id": "gi_1"},
        {"id": "gi_1", "status": 3},
        {"id": "gi_1", "status": "destroyed", "destroyed_at": "yesterday"},
        {"id": "gi_1", "status": "destroyed", "destroyed_at": "2026-11-20T10:00:00"},
    ],
)
def test_an_instance_that_is_not_the_documented_shape_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_instance(payload)


@pytest.mark.parametrize("payload", [None, {"object": "list"}, {"data": {"id": "gi_1"}}])
def test_a_list_that_is_not_the_documented_shape_is_malformed(payload: Any) -> None:
    with pytest.raises(MalformedResponse):
        parse_instance_list(payload)


# --- workloads and deploy bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("workload", "body"),
    [
        (
            Workload(mode=WorkloadMode.MODEL, model="Qwen/Qwen2.5-7B-Instruct"),
            {"mode": "model", "hf_id": "Qwen/Qwen2.5-7B-Instruct"},
        ),
        (
            Workload(mode=WorkloadMode.MODEL, model="meta/llama", env={"HF_TOKEN": "hf_x"}),
            {"mode": "model", "hf_id": "meta/llama", "env": {"HF_TOKEN": "hf_x"}},
        ),
        (
            Workload(mode=WorkloadMode.TEMPLATE, template="pytorch-jupyter"),
            {"mode": "template", "template_slug": "pytorch-jupyter"},
        ),
        (
            Workload(image="pytorch/pytorch:2.4.0", ports=(8000,), env={"A": "b"}),
            {
                "mode": "custom",
                "image": "pytorch/pytorch:2.4.0",
                "ports": [8000],
                "env": {"A": "b"},
            },
        ),
    ],
)
def test_valid_workloads_pass_and_become_the_documented_body(
    workload: Workload, body: dict[str, Any]
) -> None:
    check_workload(workload)

    assert deploy_body(make_offer(), workload) == {"gpu_slug": "rtx-4090", "gpu_count": 2, **body}


@pytest.mark.parametrize(
    ("workload", "field"),
    [
        (Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAA"), "mode"),
        (Workload(mode=WorkloadMode.MODEL), "model"),
        (Workload(mode=WorkloadMode.TEMPLATE), "template"),
        (Workload(mode=WorkloadMode.CUSTOM, ports=(80,)), "image"),
        (Workload(mode=WorkloadMode.MODEL, model="m", image="img"), "image"),
        (Workload(mode=WorkloadMode.TEMPLATE, template="comfyui", ports=(80,)), "ports"),
        (Workload(image="img", ssh_key="ssh-ed25519 AAA"), "ssh_key"),
    ],
)
def test_invalid_workloads_name_the_field_at_fault(workload: Workload, field: str) -> None:
    with pytest.raises(UnsupportedWorkload) as raised:
        check_workload(workload)

    assert raised.value.field == field


def test_an_offer_without_its_slug_is_refused() -> None:
    offer = replace(make_offer(), ref={"gpu_count": "1"})

    with pytest.raises(ProviderRefused) as raised:
        deploy_body(offer, Workload(image="img"))

    assert raised.value.reason == "refused"


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "deploying", "reason"),
    [
        (401, None, False, "unauthorized"),
        (403, None, True, "unauthorized"),
        (402, "insufficient_balance", True, "insufficient_funds"),
        (404, None, True, "not_enabled"),
        (404, "early_access_required", True, "not_enabled"),
        (404, "not_found", True, "offer_gone"),
        (404, "not_found", False, "not_found"),
        (409, "capacity_exhausted", True, "no_capacity"),
        (409, None, True, "no_capacity"),
        (409, "conflict", True, "conflict"),
        (409, "conflict", False, "conflict"),
        (400, "invalid_request_error", True, "refused"),
    ],
)
def test_refusals_in_the_brokers_words(
    status: int, error_type: str | None, deploying: bool, reason: str
) -> None:
    assert refusal_reason(status, error_type, deploying=deploying) == reason
