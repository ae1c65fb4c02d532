"""A broker that dies during an action's provider call leaves the action marked on the rental.
While it is marked, other actions are 409s; once it is older than the bound, the status job
finishes it from what the provider reports, so no rental stays stuck and no hold stays open."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from broker.rentals.billing import cost_of, hold_for
from pricing.money import to_micros
from tests.concurrency.conftest import PROVIDER, WORKLOAD, Served

BOUND = 120  # the default action_timeout_seconds


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the broker catches it, nothing after it runs."""


@pytest.fixture
def broker(serve: Callable[..., Served]) -> Iterator[Served]:
    yield serve()


def running(broker: Served) -> tuple[str, int]:
    offer = broker.offer()
    with broker.client() as client:
        rental_id = client.post("/v1/rentals", json={"offer_id": offer["id"], **WORKLOAD}).json()[
            "id"
        ]
    broker.wait_running(rental_id)
    return rental_id, to_micros(offer["price_per_hour"])


def die_in(broker: Served, monkeypatch: pytest.MonkeyPatch, method: str, *, after: bool) -> None:
    """Make the adapter's `method` kill the broker, before or after the provider acts."""
    adapter = broker.app.state.rentals.adapters[PROVIDER]
    real = getattr(adapter, method)

    def dying(handle: str) -> object:
        if after:
            real(handle)
        raise Killed

    monkeypatch.setattr(adapter, method, dying)


def act(broker: Served, method: str, path: str) -> int:
    with broker.client() as client:
        return client.request(method, path).status_code


def test_a_start_killed_before_the_provider_heard_is_undone(
    broker: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    rental_id, price = running(broker)
    service = broker.app.state.rentals
    service.stop(broker.account_id, rental_id)
    die_in(broker, monkeypatch, "start", after=False)
    with pytest.raises(Killed):
        service.start(broker.account_id, rental_id)
    monkeypatch.undo()
    assert broker.wallet()["held"] == hold_for(price, 3600)
    path = f"/v1/rentals/{rental_id}"
    assert act(broker, "DELETE", path) == 409
    assert act(broker, "POST", f"{path}/start") == 409
    broker.sync()  # within the bound: left to the action
    assert broker.rental(rental_id)["status"] == "provisioning"

    broker.clock.advance(BOUND + 1)
    broker.sync()
    assert broker.rental(rental_id)["status"] == "stopped"
    assert broker.wallet()["held"] == 0
    assert act(broker, "POST", f"{path}/start") == 200
    assert act(broker, "DELETE", path) == 200
    assert broker.wallet()["held"] == 0
    broker.invariants()


def test_a_stop_killed_after_the_provider_stopped_is_recorded(
    broker: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    rental_id, price = running(broker)
    broker.clock.advance(100)
    broker.sync()
    die_in(broker, monkeypatch, "stop", after=True)
    with pytest.raises(Killed):
        broker.app.state.rentals.stop(broker.account_id, rental_id)
    monkeypatch.undo()
    assert act(broker, "POST", f"/v1/rentals/{rental_id}/stop") == 409

    broker.clock.advance(BOUND + 1)
    broker.sync()
    stopped = broker.rental(rental_id)
    assert stopped["status"] == "stopped"
    assert to_micros(stopped["cost"]) == cost_of(price, 100)  # billed to the stop request
    assert broker.wallet()["held"] == 0
    assert act(broker, "DELETE", f"/v1/rentals/{rental_id}") == 200
    broker.invariants()


def test_a_terminate_killed_before_the_provider_heard_is_sent_again(
    broker: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    rental_id, _ = running(broker)
    die_in(broker, monkeypatch, "terminate", after=False)
    with pytest.raises(Killed):
        broker.app.state.rentals.terminate(broker.account_id, rental_id)
    monkeypatch.undo()
    assert broker.wallet()["held"] > 0
    assert act(broker, "DELETE", f"/v1/rentals/{rental_id}") == 409
    deletes = broker.counter.count("DELETE")

    broker.clock.advance(BOUND + 1)
    broker.sync()
    assert broker.rental(rental_id)["status"] == "terminated"
    assert broker.counter.count("DELETE") == deletes + 1
    assert broker.wallet()["held"] == 0
    assert act(broker, "DELETE", f"/v1/rentals/{rental_id}") == 200
    broker.invariants()
