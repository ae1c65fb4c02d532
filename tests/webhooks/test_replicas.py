"""Webhooks across real `gpubroker serve` processes on one PostgreSQL schema: each event is
delivered once however many replicas run the delivery job, and an event whose broker was killed
with SIGKILL before it could deliver is delivered by the broker that comes after it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from sqlalchemy import text

from tests.replicas.conftest import HTTP_TIMEOUT, Account, Deployment, wait_for
from tests.replicas.processes import Replica
from tests.webhooks.conftest import PROVIDER, WORKLOAD, Receiver

WEBHOOKS = {"GPUBROKER_WEBHOOK_ALLOW_PRIVATE": "true", "GPUBROKER_WEBHOOK_RETRY_SECONDS": "1,1"}
EVENTS = 20


def add_webhook(replica: Replica, account: Account, receiver: Receiver) -> dict[str, Any]:
    response = httpx.post(
        f"{replica.url}/v1/webhooks",
        json={"url": receiver.url, "events": ["*"]},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    receiver.secret = made["secret"]
    return made


def rent_and_terminate(replica: Replica, account: Account) -> str:
    """A rental that runs, then is terminated: a rental.running and a rental.terminated."""
    offers = httpx.get(
        f"{replica.url}/v1/offers", params={"provider": PROVIDER, "gpu_count": 1, "limit": 50}
    ).json()["data"]
    rented = httpx.post(
        f"{replica.url}/v1/rentals",
        json={"offer_id": offers[0]["id"], **WORKLOAD},
        headers=account.headers,
        timeout=HTTP_TIMEOUT,
    )
    assert rented.status_code == 201, rented.text
    rental_id = str(rented.json()["id"])

    def running() -> bool:
        shown = httpx.get(f"{replica.url}/v1/rentals/{rental_id}", headers=account.headers)
        return bool(shown.json()["status"] == "running")

    wait_for(running, f"rental {rental_id} to run")
    ended = httpx.delete(
        f"{replica.url}/v1/rentals/{rental_id}", headers=account.headers, timeout=HTTP_TIMEOUT
    )
    assert ended.status_code == 200, ended.text
    return rental_id


def outbox(deployment: Deployment) -> list[tuple[str, str, str]]:
    """(event id, type, delivery state) of every delivery in the database."""
    with deployment.db.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.id, e.type, d.state FROM webhook_deliveries d "
                "JOIN webhook_events e ON e.id = d.event_id ORDER BY d.id"
            )
        ).all()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_two_replicas_deliver_each_event_once(deployment: Deployment, receiver: Receiver) -> None:
    deployment.overrides.update({**WEBHOOKS, "GPUBROKER_WEBHOOK_POLL_SECONDS": "0.1"})
    first, second = deployment.start(2, migrate=True)
    account = deployment.create_account(50_000_000)
    hook = add_webhook(first, account, receiver)
    rent_and_terminate(second, account)
    tested = [
        httpx.post(f"{replica.url}/v1/webhooks/{hook['id']}/test", headers=account.headers)
        for replica in (first, second) * (EVENTS // 2)
    ]
    assert all(r.status_code == 202 for r in tested)
    expected = {str(r.json()["event_id"]) for r in tested}
    wait_for(
        lambda: (
            all(state == "delivered" for _, _, state in outbox(deployment))
            and len(outbox(deployment)) == EVENTS + 2
        ),
        "every event to be delivered",
    )
    counts = Counter(receiver.ids())
    assert set(counts) >= expected and len(counts) == EVENTS + 2
    assert set(counts.values()) == {1}, counts
    assert all(r.verified for r in receiver.received)
    assert sorted(t for t in receiver.types() if t.startswith("rental.")) == [
        "rental.running",
        "rental.terminated",
    ]


def test_an_event_committed_before_a_sigkill_is_delivered_after_the_restart(
    deployment: Deployment, receiver: Receiver
) -> None:
    # The first broker polls its outbox once, at startup, and then not for an hour: the
    # events of the rental below are committed, and still undelivered when it is killed.
    deployment.overrides.update({**WEBHOOKS, "GPUBROKER_WEBHOOK_POLL_SECONDS": "3600"})
    (broker,) = deployment.start(1, migrate=True)
    account = deployment.create_account(50_000_000)
    add_webhook(broker, account, receiver)
    rent_and_terminate(broker, account)
    pending = outbox(deployment)
    assert sorted(t for _, t, _ in pending) == ["rental.running", "rental.terminated"]
    assert {state for _, _, state in pending} == {"pending"}
    broker.kill()
    assert receiver.received == []

    deployment.overrides["GPUBROKER_WEBHOOK_POLL_SECONDS"] = "0.1"
    deployment.restart()
    got = receiver.wait_for(2)
    assert sorted(r.id for r in got) == sorted(event_id for event_id, _, _ in pending)
    assert all(r.verified for r in got)
    wait_for(
        lambda: {state for _, _, state in outbox(deployment)} == {"delivered"},
        "the deliveries to be recorded",
    )
