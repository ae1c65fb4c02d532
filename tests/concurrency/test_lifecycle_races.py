"""Racing lifecycle actions on one rental: one wins where only one can, the others are 409s or
replays, the provider is called once per action that won, and nothing stays held after the
terminate. Ten real clients per race, released together against a real server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from broker.rentals.billing import hold_for
from pricing.money import to_micros
from tests.concurrency.conftest import WORKLOAD, Served, race

ROUNDS = 3
PARALLEL = 10
ACTIONS = {"stop": ("POST", "/stop"), "start": ("POST", "/start"), "terminate": ("DELETE", "")}


def running_rental(broker: Served, offer_id: str) -> str:
    with broker.client() as client:
        response = client.post("/v1/rentals", json={"offer_id": offer_id, **WORKLOAD})
    assert response.status_code == 201, response.text
    rental_id: str = response.json()["id"]
    broker.wait_running(rental_id)
    return rental_id


def provider_calls(broker: Served, rental: str = "") -> dict[str, int]:
    return {
        "provision": broker.counter.count("POST", "/v1/gpu/instances"),
        "stop": broker.counter.count("POST", "/stop"),
        "start": broker.counter.count("POST", "/start"),
        "terminate": broker.counter.count("DELETE"),
    }


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def assert_only_wins_and_conflicts(responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code in (200, 409), response.text
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "conflict"


def race_action(broker: Served, rental_id: str, action: str) -> list[httpx.Response]:
    method, suffix = ACTIONS[action]
    path = f"/v1/rentals/{rental_id}{suffix}"
    return race(broker.url, broker.headers, [(method, path, None)] * PARALLEL)


def test_each_action_raced_ten_times_wins_once(serve: Callable[..., Served]) -> None:
    broker = serve()
    offer = broker.offer()
    hold = hold_for(to_micros(offer["price_per_hour"]), 3600)
    broker.knobs.latency_seconds = 0.05  # a provider call long enough for the racers to meet it
    for _ in range(ROUNDS):
        rental_id = running_rental(broker, offer["id"])
        broker.clock.advance(90)
        before = provider_calls(broker)

        stops = race_action(broker, rental_id, "stop")
        assert_only_wins_and_conflicts(stops)
        assert all(r.json()["status"] == "stopped" for r in stops if r.status_code == 200)
        assert any(r.status_code == 200 for r in stops)
        assert broker.wallet()["held"] == 0

        starts = race_action(broker, rental_id, "start")
        assert_only_wins_and_conflicts(starts)
        assert Counter(r.status_code for r in starts) == {200: 1, 409: PARALLEL - 1}
        assert broker.wallet()["held"] == hold  # one new hold, never one per racer
        broker.wait_running(rental_id)
        broker.clock.advance(30)

        ends = race_action(broker, rental_id, "terminate")
        assert_only_wins_and_conflicts(ends)
        assert all(r.json()["status"] == "terminated" for r in ends if r.status_code == 200)
        assert any(r.status_code == 200 for r in ends)
        assert delta(provider_calls(broker), before) == {
            "provision": 0,
            "stop": 1,
            "start": 1,
            "terminate": 1,
        }
        assert broker.wallet()["held"] == 0
        assert broker.rental(rental_id)["status"] == "terminated"
        broker.invariants()


def test_mixed_actions_raced_together_leave_nothing_held(serve: Callable[..., Served]) -> None:
    broker = serve()
    offer = broker.offer()
    broker.knobs.latency_seconds = 0.05
    kinds = ["stop", "start", "terminate", "stop", "start", "terminate", "stop", "start"]
    kinds += ["terminate", "stop"]
    for _ in range(ROUNDS):
        rental_id = running_rental(broker, offer["id"])
        broker.clock.advance(60)
        before = provider_calls(broker)
        calls = []
        for kind in kinds:
            method, suffix = ACTIONS[kind]
            calls.append((method, f"/v1/rentals/{rental_id}{suffix}", None))
        responses = race(broker.url, broker.headers, calls)
        assert_only_wins_and_conflicts(responses)
        won = Counter(k for k, r in zip(kinds, responses, strict=True) if r.status_code == 200)
        made = delta(provider_calls(broker), before)
        # A start is never a replay: each one that won made exactly one provider call. A stop
        # or terminate made at most one call per win (the rest were replays), and the rental
        # was stopped at most once more than it was started.
        assert made["start"] == won["start"]
        assert made["terminate"] <= min(1, won["terminate"])
        assert made["stop"] <= won["stop"] and made["stop"] <= made["start"] + 1
        assert made["provision"] == 0

        with broker.client() as client:
            ended = client.delete(f"/v1/rentals/{rental_id}")
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "terminated"
        assert broker.wallet()["held"] == 0
        assert provider_calls(broker)["terminate"] - before["terminate"] == 1
        broker.invariants()
    live = [i for i in broker_instances(broker) if i["status"] != "destroyed"]
    assert live == []


def broker_instances(broker: Served) -> list[dict[str, object]]:
    instances: list[dict[str, object]] = httpx.get(f"{broker.sim.url}/_sim/instances").json()[
        "instances"
    ]
    return instances
