"""Rent -> running -> metered -> stopped -> started -> terminated, to the micro-dollar."""

from __future__ import annotations

from collections.abc import Callable

from broker.rentals.billing import cost_of
from pricing.money import to_micros
from tests.rentals.conftest import Broker

WORKLOAD = {"mode": "custom", "image": "vllm/vllm-openai:latest", "ports": [8000]}


def cheapest(broker: Broker, provider: str) -> dict[str, object]:
    return broker.offers(provider=provider, gpu_count=1)[0]


def test_rent_meter_terminate_is_exact(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(credit="100.00")
    offer = cheapest(broker, "empiriolabs")
    price = to_micros(offer["price_per_hour"])
    response = broker.rent({"offer_id": offer["id"], **WORKLOAD})
    assert response.status_code == 201, response.text
    rental = response.json()
    assert rental["status"] == "provisioning" and rental["attempts"] == []
    assert rental["connect_url"] == f"/v1/rentals/{rental['id']}/connect/"
    assert rental["rental_key"].startswith("rk_")
    assert to_micros(rental["hold"]) == price  # one hour (GPUBROKER_MIN_HOLD_SECONDS) held
    assert broker.micros() == {
        "balance": 100_000_000,
        "held": price,
        "available": 100_000_000 - price,
    }

    started = broker.clock.now
    running = broker.wait_status(rental["id"], "running")
    assert running["started_at"] is not None
    broker.clock.advance(1807.4)
    broker.sync()
    broker.app.state.meter.run()
    first = cost_of(price, 1807)
    assert broker.rental(rental["id"])["cost"] == f"{first / 1e6:.6f}"
    assert broker.micros() == {
        "balance": 100_000_000 - first,
        "held": price - first,
        "available": 100_000_000 - price,
    }
    broker.app.state.meter.run()  # a second tick at the same moment charges nothing more
    assert broker.micros()["balance"] == 100_000_000 - first

    broker.clock.advance(100)
    ended = broker.client.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers).json()
    total = cost_of(price, 1907)
    assert ended["status"] == "terminated"
    assert to_micros(ended["cost"]) == total
    assert ended["ended_at"] is not None and started is not None
    assert broker.micros() == {
        "balance": 100_000_000 - total,
        "held": 0,
        "available": 100_000_000 - total,
    }
    again = broker.client.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers)
    assert again.status_code == 200 and again.json()["cost"] == ended["cost"]
    assert broker.micros()["balance"] == 100_000_000 - total
    broker.invariants()
    live = [i for i in broker.sims["empiriolabs"].instances() if i["status"] != "destroyed"]
    assert live == []


def test_stop_pauses_billing_and_start_resumes_it(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(credit="100.00")
    offer = cheapest(broker, "empiriolabs")
    price = to_micros(offer["price_per_hour"])
    rental_id = broker.rent({"offer_id": offer["id"], **WORKLOAD}).json()["id"]
    broker.wait_status(rental_id, "running")
    broker.clock.advance(600)
    broker.sync()
    stopped = broker.client.post(f"/v1/rentals/{rental_id}/stop", headers=broker.headers).json()
    assert stopped["status"] == "stopped"
    assert to_micros(stopped["cost"]) == cost_of(price, 600)
    assert broker.micros()["held"] == 0

    broker.clock.advance(5000)  # stopped: not billed
    restarted = broker.client.post(f"/v1/rentals/{rental_id}/start", headers=broker.headers)
    assert restarted.status_code == 200, restarted.text
    broker.wait_status(rental_id, "running")
    broker.clock.advance(60)
    ended = broker.client.delete(f"/v1/rentals/{rental_id}", headers=broker.headers).json()
    assert to_micros(ended["cost"]) == cost_of(price, 660)
    assert broker.micros() == {
        "balance": 100_000_000 - cost_of(price, 660),
        "held": 0,
        "available": 100_000_000 - cost_of(price, 660),
    }
    broker.invariants()


def test_listing_and_another_accounts_rental(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker()
    offer = cheapest(broker, "empiriolabs")
    rental_id = broker.rent({"offer_id": offer["id"], **WORKLOAD}).json()["id"]
    listed = broker.client.get("/v1/rentals", headers=broker.headers).json()
    assert [r["id"] for r in listed["data"]] == [rental_id]
    assert (
        broker.client.get("/v1/rentals?status=terminated", headers=broker.headers).json()["data"]
        == []
    )
    other = broker.client.post(
        "/v1/admin/accounts",
        json={"name": "other"},
        headers={"Authorization": "Bearer test-admin-key"},
    ).json()
    theirs = {"Authorization": f"Bearer {other['api_key']}"}
    assert broker.client.get(f"/v1/rentals/{rental_id}", headers=theirs).status_code == 404
    assert broker.client.delete(f"/v1/rentals/{rental_id}", headers=theirs).status_code == 404
    assert broker.client.get("/v1/rentals").status_code == 401
