"""Failover: the cheapest candidate refuses or fails; the broker blocks at the right scope,
records the attempt and lands on the next candidate. Nothing can start: 503, hold released."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.rentals.conftest import Broker

MODEL = {"mode": "model", "model": "Qwen/Qwen2.5-7B-Instruct"}
CONSTRAINTS = {"gpu": "RTX 4090", "providers": ["empiriolabs", "aivory"], **MODEL}


def ranked(broker: Broker) -> list[dict[str, Any]]:
    return [
        o
        for o in broker.offers(gpu="RTX 4090", gpu_count=1, sort="effective_price")
        if o["provider"] in ("empiriolabs", "aivory")
    ]


@pytest.mark.parametrize(
    ("failure", "error", "scope"),
    [
        ("5xx", "provider_error", "provider"),
        ("timeout", "provider_error", "provider"),
        ("payment", "insufficient_funds", "provider"),
        ("conflict", "conflict", "offer"),
        ("capacity", "no_capacity", "region"),
    ],
)
def test_fails_over_from_the_cheapest_candidate(
    make_broker: Callable[..., Broker], failure: str, error: str, scope: str
) -> None:
    broker = make_broker()
    first = ranked(broker)[0]
    knobs = broker.sims[first["provider"]].knobs
    if failure in ("5xx", "timeout"):
        knobs.fail_next(2 if failure == "5xx" else 1, failure)  # outlasts the retries
    else:
        knobs.refuse_next(1, failure)

    response = broker.rent(CONSTRAINTS)
    assert response.status_code == 201, response.text
    rental = response.json()
    attempt = rental["attempts"][0]
    assert (attempt["provider"], attempt["offer_id"]) == (first["provider"], first["id"])
    assert attempt["error"] == error and attempt["blocked"] == scope
    assert rental["offer_id"] != first["id"]
    landed = broker.client.get(f"/v1/offers/{rental['offer_id']}").json()
    if scope == "provider":
        assert landed["provider"] != first["provider"]
    if scope == "region":
        assert (landed["provider"], landed["region"]) != (first["provider"], first["region"])
    expected = [o["id"] for o in ranked(broker)]
    assert expected.index(rental["offer_id"]) > 0
    broker.invariants()


def test_nothing_can_start_is_503_with_the_hold_released(
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker()
    broker.sims["empiriolabs"].knobs.refuse_next(50, "capacity")
    before = broker.micros()
    response = broker.rent({"gpu": "RTX 4090", "providers": ["empiriolabs"], **MODEL})
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "no_capacity"
    assert error["attempts"] and {a["error"] for a in error["attempts"]} == {"no_capacity"}
    assert broker.micros() == before
    broker.invariants()


def test_max_price_is_a_hard_cap(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker()
    cheapest = ranked(broker)[0]
    cap = cheapest["price_per_gpu_hour"]
    body = {**CONSTRAINTS, "max_price": cap, "tier": cheapest["tier"]}
    broker.sims[cheapest["provider"]].knobs.refuse_next(1, "conflict")
    response = broker.rent(body)
    if response.status_code == 201:
        landed = broker.client.get(f"/v1/offers/{response.json()['offer_id']}").json()
        assert landed["price_per_gpu_hour"] <= cap
    else:
        assert response.status_code == 503
        assert broker.micros()["held"] == 0
