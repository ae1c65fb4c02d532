"""Idempotent retries, credit checks and bad input: refused requests never move money."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from broker.rentals.billing import cost_of
from pricing.money import format_usd, to_micros
from tests.rentals.conftest import Broker

WORKLOAD = {"mode": "custom", "image": "vllm/vllm-openai:latest", "ports": [8000]}


def empiriolabs_offer(broker: Broker) -> dict[str, Any]:
    return broker.offers(provider="empiriolabs", gpu_count=1)[0]


def test_same_key_same_body_is_the_same_rental(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker()
    body = {"offer_id": empiriolabs_offer(broker)["id"], **WORKLOAD}
    first = broker.rent(body, key="order-42")
    assert first.status_code == 201
    with ThreadPoolExecutor(4) as pool:
        replays = list(pool.map(lambda _: broker.rent(body, key="order-42"), range(4)))
    assert {r.json()["id"] for r in replays} == {first.json()["id"]}
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in replays)
    assert all("rental_key" not in r.json() for r in replays)
    held = broker.micros()["held"]
    assert held == to_micros(first.json()["hold"])  # one hold, not five

    other = broker.rent({**body, "env": {"A": "1"}}, key="order-42")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    assert broker.micros()["held"] == held
    listed = broker.client.get("/v1/rentals", headers=broker.headers).json()["data"]
    assert len(listed) == 1
    broker.invariants()


def test_hold_that_does_not_fit_is_402_before_provisioning(
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker(credit="0.10")
    offer = empiriolabs_offer(broker)
    response = broker.rent({"offer_id": offer["id"], **WORKLOAD})
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_credit"
    missing = to_micros(offer["price_per_hour"]) - 100_000
    assert error["missing"] == format_usd(missing)
    assert broker.sims["empiriolabs"].instances() == []
    assert broker.micros() == {"balance": 100_000, "held": 0, "available": 100_000}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"gpu": "RTX 4909"}, "gpu"),
        ({"gpu": "RTX 4090", "tier": "cheap"}, "tier"),
        ({"gpu": "RTX 4090", "max_price": "-1"}, "max_price"),
        ({"gpu": "RTX 4090", "max_price": "abc"}, "max_price"),
        ({"gpu": "RTX 4090", "gpu_count": 0}, "gpu_count"),
        ({"gpu": "RTX 4090", "providers": ["nosuch"]}, "provider"),
        ({"gpu": "RTX 4090", "ports": [70000]}, "ports.0"),
        ({"gpu": "RTX 4090", "env": {"1BAD": "x"}}, "env"),
        ({"gpu": "RTX 4090", "colour": "blue"}, "colour"),
        ({"offer_id": "empiriolabs:x", "gpu": "RTX 4090"}, "offer_id"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    make_broker: Callable[..., Broker], body: dict[str, Any], param: str
) -> None:
    broker = make_broker()
    response = broker.rent(body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert broker.micros()["held"] == 0


def test_unknown_and_unavailable_offers(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker()
    missing = broker.rent({"offer_id": "empiriolabs:nope:us:1x", **WORKLOAD})
    assert missing.status_code == 404
    gone = next(o for o in broker.offers(available="false") if o["provider"] == "empiriolabs")
    unavailable = broker.rent({"offer_id": gone["id"], **WORKLOAD})
    assert unavailable.status_code == 409
    assert "not available" in unavailable.json()["error"]["message"]
    assert broker.micros()["held"] == 0


def test_constraints_nothing_matches_is_503_naming_them(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker()
    response = broker.rent({"gpu": "H200", "max_price": "0.01", **WORKLOAD})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_capacity" and error["attempts"] == []
    assert "H200" in error["message"] and "max_price" in error["message"]
    assert broker.micros()["held"] == 0


def test_workload_the_provider_cannot_run_is_422(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker()
    offer = empiriolabs_offer(broker)
    response = broker.rent({"offer_id": offer["id"], "mode": "ssh", "ssh_key": "ssh-ed25519 AAAA"})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "mode"
    assert broker.micros()["held"] == 0


def test_running_out_of_credit_stops_the_rental(make_broker: Callable[..., Broker]) -> None:
    offer = empiriolabs_offer(make_broker())
    price = to_micros(offer["price_per_hour"])
    budget = cost_of(price, 700)  # the account holds exactly 700 seconds of this GPU
    fresh = make_broker(credit=str(Decimal(budget) / 1_000_000), min_hold_seconds=600)
    rental_id = fresh.rent({"offer_id": offer["id"], **WORKLOAD}).json()["id"]
    fresh.wait_status(rental_id, "running")
    for _ in range(60):
        fresh.clock.advance(15)
        fresh.sync()
        fresh.app.state.meter.run()
        if fresh.rental(rental_id)["status"] != "running":
            break
    rental = fresh.rental(rental_id)
    assert rental["status"] == "stopped"
    assert "out of credit" in rental["reason"]
    wallet = fresh.micros()
    assert wallet["held"] == 0 and wallet["available"] >= 0
    assert to_micros(rental["cost"]) <= budget
    assert to_micros(rental["cost"]) == budget - wallet["balance"]
    assert rental["billed_seconds"] > 600
    fresh.invariants()
