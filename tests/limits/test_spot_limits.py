"""A recovered spot rental is one rental to its limits and its bill: the duration and cost of every
placement add up, and a recovery policy moves it to on-demand (or stops recovering) after
`max_interruptions`."""

from __future__ import annotations

from typing import Any

from broker.rentals.billing import cost_of
from broker.rentals.tables import Rental
from pricing.money import to_micros
from tests.limits.conftest import TICK, Broker
from tests.proxy.conftest import WORKLOADS

PROVIDER = "computegpu"  # spot pods it can preempt, and on-demand pods of the same GPUs


def lose(broker: Broker, rental_id: str) -> dict[str, Any]:
    """Have the provider take the rental's current instance back; the next tick sees it."""
    with broker.app.state.db.session(read_only=True) as session:
        handle = session.get(Rental, rental_id).handle
    broker.sims[PROVIDER].interrupt(handle.rpartition(":")[2])
    broker.tick()
    return broker.get(rental_id)


def both_tiers(broker: Broker) -> dict[str, Any]:
    """A spot pod of a GPU that the provider also sells on demand."""
    _, filters, prefix = WORKLOADS[PROVIDER]
    response = broker.api.get(
        "/v1/offers", params={"provider": PROVIDER, "gpu_count": 1, "limit": 500, **filters}
    )
    pods = [o for o in response.json()["data"] if o["id"].startswith(prefix)]
    on_demand = {o["gpu"] for o in pods if o["tier"] == "on_demand"}
    return next(o for o in pods if o["tier"] == "spot" and o["gpu"] in on_demand)


def rent(broker: Broker, **extra: Any) -> dict[str, Any]:
    workload, _, _ = WORKLOADS[PROVIDER]
    created = broker.api.post("/v1/rentals", json={**workload, **extra}, headers=broker.headers)
    assert created.status_code == 201, created.text
    return broker.wait_status(created.json()["id"], "running", broker.headers)


def test_duration_and_cost_are_summed_across_placements(limited: Broker) -> None:
    spot = both_tiers(limited)
    rental = rent(limited, offer_id=spot["id"], recover=True, max_duration_seconds=900)
    first_price = to_micros(rental["price_per_hour"])
    for _ in range(600 // TICK):
        limited.tick()
    lost = lose(limited, rental["id"])
    assert lost["interruptions"] == 1 and lost["billed_seconds"] == 600
    assert to_micros(lost["cost"]) == cost_of(first_price, 600)
    assert lost["limits_left"]["max_duration_seconds"] == 300

    moved = limited.wait_status(rental["id"], "running", limited.headers)
    assert moved["offer_id"] != spot["id"]
    second_price = to_micros(moved["price_per_hour"])
    limited.ticks_until_ended(rental["id"])

    ended = limited.get(rental["id"])
    assert ended["status"] == "terminated" and ended["reason"] == "max_duration"
    assert ended["billed_seconds"] == 900
    assert to_micros(ended["cost"]) == cost_of(first_price, 600) + cost_of(second_price, 300)


def test_after_max_interruptions_the_rental_falls_back_to_on_demand(limited: Broker) -> None:
    spot = both_tiers(limited)
    policy = {"max_interruptions": 1, "fallback": "on_demand"}
    terms = {"gpu": spot["gpu"], "tier": "spot", "providers": [PROVIDER], "recover": policy}
    rental = rent(limited, **terms)
    assert rental["recover"] == policy and rental["tier"] == "spot"
    for _ in range(4):
        limited.tick()

    assert lose(limited, rental["id"])["interruptions"] == 1
    fallen = limited.wait_status(rental["id"], "running", limited.headers)
    assert fallen["tier"] == "on_demand" and fallen["gpu"] == spot["gpu"]
    for _ in range(4):
        limited.tick()
    ended = limited.api.delete(f"/v1/rentals/{rental['id']}", headers=limited.headers).json()
    spot_cost = cost_of(to_micros(rental["price_per_hour"]), 4 * TICK)
    on_demand_cost = cost_of(to_micros(fallen["price_per_hour"]), 4 * TICK)
    assert ended["billed_seconds"] == 8 * TICK
    assert to_micros(ended["cost"]) == spot_cost + on_demand_cost


def test_without_a_fallback_recovery_stops_after_max_interruptions(limited: Broker) -> None:
    spot = both_tiers(limited)
    rental = rent(limited, offer_id=spot["id"], recover={"max_interruptions": 1})
    lost = lose(limited, rental["id"])
    assert lost["status"] == "interrupted" and "max_interruptions" in lost["reason"]
    limited.tick()
    assert limited.get(rental["id"])["status"] == "interrupted"
    wallet = limited.api.get("/v1/wallet", headers=limited.headers).json()
    assert wallet["held"] == "0.000000"
