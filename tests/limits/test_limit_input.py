"""Limits are validated before any money moves: a bad one is a 422 naming its field; good ones
are echoed back, with what is left of each, and kept in the idempotent request."""

from __future__ import annotations

from typing import Any

from tests.limits.conftest import Broker
from tests.proxy.conftest import WORKLOADS

BAD: list[tuple[str, Any]] = [
    ("max_duration_seconds", 0),
    ("max_duration_seconds", -60),
    ("max_duration_seconds", "soon"),
    ("max_cost", 0),
    ("max_cost", "-1"),
    ("max_cost", "1.0000001"),
    ("idle_timeout_seconds", 0),
    ("idle_timeout_seconds", -1),
    ("recover", {"max_interruptions": -1}),
    ("recover", {"fallback": "anything"}),
]


def test_bad_limits_are_422_naming_the_field(limited: Broker) -> None:
    workload, _, _ = WORKLOADS["empiriolabs"]
    offer = limited.offer("empiriolabs")
    for field, value in BAD:
        body = {"offer_id": offer["id"], **workload, field: value}
        refused = limited.api.post("/v1/rentals", json=body, headers=limited.headers)
        assert refused.status_code == 422, (field, value, refused.text)
        assert refused.json()["error"]["param"].split(".")[0] == field, (field, value)
    wallet = limited.api.get("/v1/wallet", headers=limited.headers).json()
    assert wallet["held"] == "0.000000"


def test_limits_are_echoed_with_what_is_left(limited: Broker) -> None:
    workload, _, _ = WORKLOADS["empiriolabs"]
    body = {
        "offer_id": limited.offer("empiriolabs")["id"],
        **workload,
        "max_duration_seconds": 7200,
        "max_cost": "5.123456",
        "idle_timeout_seconds": 1800,
    }
    headers = {**limited.headers, "Idempotency-Key": "limited-1"}
    created = limited.api.post("/v1/rentals", json=body, headers=headers)
    assert created.status_code == 201, created.text
    shown = limited.get(created.json()["id"])
    assert shown["max_duration_seconds"] == 7200 and shown["idle_timeout_seconds"] == 1800
    assert shown["max_cost"] == "5.123456"
    assert shown["limits_left"]["max_duration_seconds"] == 7200
    assert shown["limits_left"]["max_cost"] == "5.123456"
    other = {**body, "max_cost": "6"}
    conflict = limited.api.post("/v1/rentals", json=other, headers=headers)
    assert conflict.status_code == 409  # the same key with other limits is another request
