"""Spot interruptions: billing ends at the moment of loss, the loss feeds the observed rate,
and a rental that asked to recover is placed again under the same id and connect URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from broker.rentals.billing import cost_of
from pricing.money import to_micros
from tests.rentals.conftest import Broker

MODEL = {"mode": "model", "model": "meta-llama/Llama-3.1-8B-Instruct"}


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """A broker whose account holds 100 USD."""
    return make_broker(credit="100.00")


def spot_offer(broker: Broker) -> dict[str, Any]:
    return broker.offers(provider="aivory", tier="spot", gpu="RTX 4090", sort="effective_price")[0]


def run_then_lose(broker: Broker, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Rent, run 600 s (seen running), run 120 s more unseen, then lose the instance."""
    created = broker.rent(body)
    assert created.status_code == 201, created.text
    rental = broker.wait_status(created.json()["id"], "running")
    price = to_micros(rental["price_per_hour"])
    broker.clock.advance(600)
    broker.sync()
    broker.clock.advance(120)
    live = [i for i in broker.sims["aivory"].instances() if i["status"] == "running"]
    [handle] = [i["rental_id"] for i in live]
    broker.sims["aivory"].interrupt(handle)
    broker.sync()
    return broker.rental(rental["id"]), price


def test_interruption_ends_billing_at_the_last_moment_seen_running(broker: Broker) -> None:
    offer = spot_offer(broker)
    assert offer["interruption_source"] == "provider"
    rental, price = run_then_lose(broker, {"offer_id": offer["id"], **MODEL})
    assert rental["status"] == "interrupted"
    assert rental["interruptions"] == 1 and "interrupted" in rental["reason"]
    assert to_micros(rental["cost"]) == cost_of(price, 600)
    assert broker.micros() == {
        "balance": 100_000_000 - cost_of(price, 600),
        "held": 0,
        "available": 100_000_000 - cost_of(price, 600),
    }
    seen = broker.client.get(f"/v1/offers/{offer['id']}").json()
    assert seen["interruption_source"] == "observed"
    assert seen["interruption_probability"] != offer["interruption_probability"]
    broker.invariants()


def test_recover_rents_the_next_best_offer_under_the_same_id(broker: Broker) -> None:
    offer = spot_offer(broker)
    rental, price = run_then_lose(broker, {"offer_id": offer["id"], "recover": True, **MODEL})
    assert rental["interruptions"] == 1
    assert rental["offer_id"] != offer["id"]
    assert rental["status"] in ("provisioning", "running")
    assert rental["connect_url"] == f"/v1/rentals/{rental['id']}/connect/"
    assert to_micros(rental["cost"]) == cost_of(price, 600)
    assert "recovered" in rental["reason"]

    running = broker.wait_status(rental["id"], "running")
    new_price = to_micros(running["price_per_hour"])
    broker.clock.advance(300)
    ended = broker.client.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers).json()
    total = cost_of(price, 600) + cost_of(new_price, 300)
    assert to_micros(ended["cost"]) == total
    assert ended["billed_seconds"] == 900
    assert broker.micros() == {
        "balance": 100_000_000 - total,
        "held": 0,
        "available": 100_000_000 - total,
    }
    broker.invariants()
