"""Webhooks end to end in one broker: rental events reach a loopback receiver signed the
Standard Webhooks way, failures are retried under the same id until the schedule runs out, and
the delivery log shows every attempt."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text

from tests.webhooks.conftest import SPOT_PROVIDER, Broker, Receiver

RENTAL_EVENTS = ["rental.running", "rental.stopped", "rental.terminated"]


def test_rental_events_arrive_signed_with_the_rental_as_the_api_shows_it(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker()
    hook = broker.add_webhook(receiver, ["*"])
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["*"]
    listed = broker.get("/v1/webhooks").json()["data"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]

    rental = broker.rent_workload()
    broker.wait_status(rental["id"], "running")
    assert broker.post(f"/v1/rentals/{rental['id']}/stop").status_code == 200
    ended = broker.client.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers)
    assert ended.status_code == 200, ended.text
    assert receiver.received == []  # nothing is sent from the request itself
    assert broker.deliver() == 3

    got = receiver.wait_for(3)
    assert all(r.verified for r in got)
    assert sorted(r.json["type"] for r in got) == sorted(RENTAL_EVENTS)
    by_type = {r.json["type"]: r.json for r in got}
    shown = broker.get(f"/v1/rentals/{rental['id']}").json()
    assert by_type["rental.terminated"]["data"] == shown
    assert by_type["rental.running"]["data"]["status"] == "running"
    assert by_type["rental.stopped"]["data"]["status"] == "stopped"
    assert set(by_type["rental.running"]["data"]) == set(shown)
    assert len(set(receiver.ids())) == 3
    log = broker.deliveries(hook["id"])
    assert sorted(a["event_id"] for a in log) == sorted(receiver.ids())
    assert {(a["attempt"], a["status_code"], a["error"], a["gave_up"]) for a in log} == {
        (1, 200, None, False)
    }
    assert broker.deliver() == 0  # delivered events are not sent again


def test_filters_and_the_test_delivery(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker()
    hook = broker.add_webhook(receiver, ["rental.terminated"])
    rental = broker.rent_workload()
    broker.wait_status(rental["id"], "running")
    broker.client.delete(f"/v1/rentals/{rental['id']}", headers=broker.headers)
    tested = broker.post(f"/v1/webhooks/{hook['id']}/test")
    assert tested.status_code == 202, tested.text
    broker.deliver()
    got = receiver.wait_for(2)
    assert all(r.verified for r in got)
    assert sorted(receiver.types()) == ["rental.terminated", "webhook.test"]
    assert tested.json()["event_id"] in receiver.ids()


def test_a_500_is_retried_with_the_same_id_until_answered(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker()
    hook = broker.add_webhook(receiver, ["*"])
    receiver.answers = [500, 503]
    event_id = broker.post(f"/v1/webhooks/{hook['id']}/test").json()["event_id"]
    for _ in range(3):
        assert broker.deliver() == 1
    assert broker.deliver() == 0
    assert receiver.ids() == [event_id] * 3
    assert all(r.verified for r in receiver.received)
    log = broker.deliveries(hook["id"])
    assert [(a["attempt"], a["status_code"], a["gave_up"]) for a in log] == [
        (3, 200, False),
        (2, 503, False),
        (1, 500, False),
    ]


def test_a_delivery_is_given_up_after_the_schedule(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker(webhook_retry_seconds=(0,), webhook_timeout_seconds=0.5)
    hook = broker.add_webhook(receiver, ["*"])
    receiver.delay_seconds = 1.5  # every answer comes after the timeout
    event_id = broker.post(f"/v1/webhooks/{hook['id']}/test").json()["event_id"]
    assert broker.deliver() == 1
    assert broker.deliver() == 1
    assert broker.deliver() == 0  # one pause in the schedule: two attempts, then given up
    log = broker.deliveries(hook["id"])
    assert [(a["event_id"], a["attempt"], a["status_code"], a["gave_up"]) for a in log] == [
        (event_id, 2, None, True),
        (event_id, 1, None, False),
    ]
    assert all("timed out" in a["error"] for a in log)


def test_a_retry_waits_for_its_pause(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker(webhook_retry_seconds=(3600,))
    hook = broker.add_webhook(receiver, ["*"])
    receiver.answers = [500]
    broker.post(f"/v1/webhooks/{hook['id']}/test")
    assert broker.deliver() == 1
    assert broker.deliver() == 0  # due again in an hour
    with broker.app.state.db.engine.connect() as conn:
        state = conn.execute(text("SELECT state, attempts FROM webhook_deliveries")).one()
    assert tuple(state) == ("pending", 1)


def test_a_spot_interruption_and_its_recovery_are_announced(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker()
    broker.add_webhook(receiver, ["rental.interrupted", "rental.recovered"])
    offers = broker.client.get(
        "/v1/offers",
        params={"provider": SPOT_PROVIDER, "tier": "spot", "gpu": "RTX 4090", "limit": 500},
    ).json()["data"]
    body = {"offer_id": offers[0]["id"], "recover": True, "mode": "model"}
    created = broker.post("/v1/rentals", {**body, "model": "meta-llama/Llama-3.1-8B-Instruct"})
    assert created.status_code == 201, created.text
    rental_id = created.json()["id"]
    broker.wait_status(rental_id, "running")
    sim = broker.sims[SPOT_PROVIDER]
    [handle] = [i["rental_id"] for i in sim.instances() if i["status"] == "running"]
    sim.interrupt(handle)
    broker.app.state.status_sync.run()
    broker.deliver()
    got = receiver.wait_for(2)
    assert all(r.verified for r in got)
    by_type = {r.json["type"]: r.json["data"] for r in got}
    assert set(by_type) == {"rental.interrupted", "rental.recovered"}
    assert by_type["rental.interrupted"]["status"] == "interrupted"
    assert by_type["rental.recovered"]["id"] == rental_id
    assert by_type["rental.recovered"]["interruptions"] == 1
    assert by_type["rental.recovered"]["offer_id"] != offers[0]["id"]
