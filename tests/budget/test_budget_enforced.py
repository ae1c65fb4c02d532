"""A monthly budget refuses the rent whose hold would pass it, and stops the running rentals once
the month's spend reaches it, as at zero credit: both raced by parallel HTTP clients, on SQLite
and PostgreSQL. The spend never passes the limit, nothing is held afterwards, and the next
calendar month starts clean."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from broker.budget import service
from broker.budget.service import month_of
from broker.rentals.billing import hold_for
from pricing.dbtypes import utcnow
from pricing.money import format_usd, to_micros
from tests.limits.conftest import Broker
from tests.proxy.conftest import WORKLOADS

PROVIDER = "empiriolabs"  # it can stop: a budget stops rentals where the provider can
HOLD_SECONDS = 600


def set_limit(broker: Broker, micros: int) -> None:
    response = broker.api.put(
        "/v1/budget", json={"monthly_limit": format_usd(micros)}, headers=broker.headers
    )
    assert response.status_code == 200, response.text


def rent_in_parallel(broker: Broker, count: int) -> list[httpx.Response]:
    """`count` rents of the plain offer at once, each from its own HTTP client."""
    workload, _, _ = WORKLOADS[PROVIDER]
    body = {"offer_id": broker.offer(PROVIDER)["id"], **workload}

    def rent(_: int) -> httpx.Response:
        with httpx.Client(base_url=broker.url, timeout=30) as client:
            return client.post("/v1/rentals", json=body, headers=broker.headers)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(rent, range(count)))


def budget(broker: Broker) -> dict[str, Any]:
    body: dict[str, Any] = broker.api.get("/v1/budget", headers=broker.headers).json()
    return body


def test_parallel_rents_past_the_budget_are_402(make_limited: Callable[..., Broker]) -> None:
    broker = make_limited(min_hold_seconds=HOLD_SECONDS)
    hold = hold_for(to_micros(broker.offer(PROVIDER)["price_per_hour"]), HOLD_SECONDS)
    set_limit(broker, 3 * hold + hold // 2)  # room for three holds, not four

    answers = rent_in_parallel(broker, 6)

    assert sorted(a.status_code for a in answers) == [201] * 3 + [402] * 3
    for refused in (a for a in answers if a.status_code == 402):
        error = refused.json()["error"]
        assert error["code"] == "budget_exceeded"
        assert "left this month" in error["message"]
        assert to_micros(error["left"]) == hold // 2
    state = budget(broker)
    assert to_micros(state["held"]) == 3 * hold
    assert to_micros(state["spent"]) + to_micros(state["held"]) <= to_micros(state["monthly_limit"])


def test_reaching_the_budget_stops_every_running_rental(
    make_limited: Callable[..., Broker],
) -> None:
    broker = make_limited(min_hold_seconds=HOLD_SECONDS)
    price = to_micros(broker.offer(PROVIDER)["price_per_hour"])
    limit = 2 * hold_for(price, HOLD_SECONDS)  # about ten minutes of two rentals
    set_limit(broker, limit)
    answers = rent_in_parallel(broker, 2)
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    ids = [a.json()["id"] for a in answers]
    for rental_id in ids:
        broker.wait_status(rental_id, "running", broker.headers)

    for _ in range(200):
        broker.tick()
        if all(broker.get(rental_id)["status"] != "running" for rental_id in ids):
            break

    for rental_id in ids:
        ended = broker.get(rental_id)
        assert ended["status"] == "stopped" and "budget" in ended["reason"]
    state = budget(broker)
    assert to_micros(state["spent"]) == limit and to_micros(state["held"]) == 0
    wallet = broker.api.get("/v1/wallet", headers=broker.headers).json()
    assert to_micros(wallet["balance"]) == 100_000_000 - limit
    started = broker.api.post(f"/v1/rentals/{ids[0]}/start", headers=broker.headers)
    assert started.status_code == 402 and started.json()["error"]["code"] == "budget_exceeded"

    # A new calendar month starts clean (the ledger stamps its charges on the wall clock).
    next_month = month_of(utcnow()).end
    with broker.app.state.db.session(read_only=True) as session:
        assert service.state_of(session, broker.owner.id, next_month).spent == 0
        assert service.left_this_month(session, [broker.owner.id], next_month) == {
            broker.owner.id: limit
        }
