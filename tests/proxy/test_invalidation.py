"""A revoked key or an ended rental is refused at once, on the replica that made the change and
on every other replica of the same database, although the proxy remembers keys and rentals for a
minute here: only the invalidation at commit (PostgreSQL LISTEN/NOTIFY across replicas, direct
within one process) can explain a refusal within the second.

Clients hammer the connect proxy through every replica from threads while the change is made;
the test then polls each replica until it refuses, for at most one second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import text, update

from broker.db import Database, bulk_update
from broker.invalidation import Change, InvalidationBus
from broker.rentals.tables import Rental
from tests.brokers import ADMIN
from tests.proxy.conftest import Broker

CACHE_SECONDS = 60.0  # far longer than the bound: a refusal within 1 s is the invalidation's
BOUND_SECONDS = 1.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def revoked(response: httpx.Response) -> bool:
    return response.status_code == 401


def ended(response: httpx.Response) -> bool:
    """The broker's own refusal: a terminated workload's provider may answer 409 too."""
    return response.status_code == 409 and response.json()["error"].get("status") == "terminated"


@dataclass
class Hammer:
    """Requests sent in a loop from a thread; records when each was sent and if it was refused."""

    url: str
    headers: dict[str, str]
    refused: Callable[[httpx.Response], bool]
    sent: list[tuple[float, bool]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                at = time.monotonic()
                self.sent.append((at, self.refused(client.get(self.url, headers=self.headers))))

    def forwarded_after(self, moment: float) -> int:
        """Requests sent after `moment` that the proxy let through to the provider."""
        return sum(1 for at, refused in self.sent if at >= moment and not refused)


@contextmanager
def hammering(
    targets: list[tuple[str, dict[str, str]]], refused: Callable[[httpx.Response], bool]
) -> Iterator[list[Hammer]]:
    hammers = [Hammer(url, headers, refused) for url, headers in targets]
    threads = [threading.Thread(target=h.run, daemon=True) for h in hammers]
    for thread in threads:
        thread.start()
    try:
        while any(len(h.sent) < 5 for h in hammers):  # every replica has it cached by now
            time.sleep(0.01)
        yield hammers
    finally:
        for hammer in hammers:
            hammer.stopping.set()
        for thread in threads:
            thread.join(timeout=10)


def refused_within(
    url: str, headers: dict[str, str], refused: Callable[[httpx.Response], bool], seconds: float
) -> bool:
    """Whether the proxy refuses `url` within `seconds` of now."""
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=5) as client:
        while not refused(client.get(url, headers=headers)):
            if time.monotonic() > deadline:
                return False
    return True


def models_url(broker: Broker, rental_id: str) -> str:
    return broker.connect_url(rental_id) + "v1/models"


def check_revocation(replicas: list[Broker]) -> list[int]:
    first = replicas[0]
    rental = first.rent("empiriolabs")
    urls = [models_url(replica, rental["id"]) for replica in replicas]
    with hammering([(url, first.headers) for url in urls], revoked) as hammers:
        first.revoke(first.owner)
        moment = time.monotonic()
        refusals = [refused_within(url, first.headers, revoked, BOUND_SECONDS) for url in urls]
    assert refusals == [True] * len(replicas)
    # The rental itself is untouched: its own key still opens it everywhere.
    for url in urls:
        assert httpx.get(url, headers=bearer(rental["rental_key"])).status_code == 200
    return [hammer.forwarded_after(moment) for hammer in hammers]


def check_termination(replicas: list[Broker]) -> list[int]:
    first = replicas[0]
    rental = first.rent("empiriolabs")
    urls = [models_url(replica, rental["id"]) for replica in replicas]
    key = bearer(rental["rental_key"])
    with hammering([(url, key) for url in urls], ended) as hammers:
        answer = first.api.delete(f"/v1/rentals/{rental['id']}", headers=first.headers)
        assert answer.status_code == 200, answer.text
        moment = time.monotonic()
        refusals = [refused_within(url, key, ended, BOUND_SECONDS) for url in urls]
    assert refusals == [True] * len(replicas)
    return [hammer.forwarded_after(moment) for hammer in hammers]


# How a rental is taken away from a caller, and what the tests call that change.
CHANGES = pytest.mark.parametrize(
    "check", [check_revocation, check_termination], ids=["revoked key", "ended rental"]
)


@CHANGES
def test_a_revoked_key_or_an_ended_rental_is_refused_at_once(
    make_broker: Callable[..., Broker], check: Callable[[list[Broker]], list[int]]
) -> None:
    forwarded = check([make_broker(cache_seconds=CACHE_SECONDS)])
    assert forwarded == [0]  # one process: invalidated before the change's answer


@CHANGES
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_change_on_one_replica_is_refused_on_the_other(
    make_broker: Callable[..., Broker], check: Callable[[list[Broker]], list[int]]
) -> None:
    replicas = [make_broker(cache_seconds=CACHE_SECONDS) for _ in range(2)]
    forwarded = check(replicas)
    print(f"requests forwarded after the change answered, per replica: {forwarded}")
    assert forwarded[0] == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_listener_reconnects_and_still_invalidates(
    make_broker: Callable[..., Broker],
) -> None:
    """The listening connection is killed; the replica reconnects and keeps refusing promptly."""
    first, second = (make_broker(cache_seconds=CACHE_SECONDS) for _ in range(2))
    bus: InvalidationBus = second.app.state.invalidations
    pid = bus.listener_pid()
    assert pid is not None
    killed = first.app.state.db.engine.connect()
    with killed:
        killed.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        killed.commit()
    deadline = time.monotonic() + 10
    while bus.listener_pid() in (None, pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.listener_pid() not in (None, pid)
    assert check_revocation([first, second]) is not None


def test_a_bulk_status_update_invalidates_every_rental(make_broker: Callable[..., Broker]) -> None:
    """A Core UPDATE of statuses cannot name its rows: every remembered rental is forgotten."""
    broker = make_broker(cache_seconds=CACHE_SECONDS)
    rental = broker.rent("empiriolabs")
    url = models_url(broker, rental["id"])
    assert httpx.get(url, headers=broker.headers).status_code == 200  # now remembered
    with broker.app.state.db.session() as session:
        session.execute(
            update(Rental).where(Rental.id == rental["id"]).values(status="stopped")  # type: ignore[arg-type]
        )
    refused = httpx.get(url, headers=broker.headers)
    assert refused.status_code == 409 and refused.json()["error"]["status"] == "stopped"


def test_key_rotation_refuses_the_old_key_at_once(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(cache_seconds=CACHE_SECONDS)
    rental = broker.rent("empiriolabs")
    url = models_url(broker, rental["id"])
    assert httpx.get(url, headers=broker.headers).status_code == 200
    rotated = broker.api.post(
        f"/v1/admin/accounts/{broker.owner.id}/keys",
        json={"replaces": broker.owner.key_id},
        headers=ADMIN,
    )
    assert rotated.status_code == 201, rotated.text
    assert httpx.get(url, headers=broker.headers).status_code == 401
    assert httpx.get(url, headers=bearer(rotated.json()["api_key"])).status_code == 200


def test_a_large_change_is_split_into_payloads_postgresql_accepts() -> None:
    change = Change(
        frozenset(f"rnt_{i:020d}" for i in range(900)),
        frozenset(f"{i:064x}" for i in range(200)),
    )
    payloads = change.payloads()

    assert len(payloads) > 1 and all(len(p.encode()) < 8000 for p in payloads)
    parsed = Change()
    for payload in payloads:
        parsed |= Change.parse(payload)
    assert parsed == change
    assert Change.parse("not json") == Change(everything=True)


def test_only_core_updates_of_watched_columns_invalidate(database: Database) -> None:
    bus = InvalidationBus(database)
    seen: list[Change] = []
    bus.subscribe(seen.append)
    rentals = Rental.__table__  # type: ignore[attr-defined]
    with database.session() as session:  # the meter's billing update: nothing the proxy keeps
        bulk_update(session.connection(), rentals, "id", [{"id": "rnt_x", "billed_seconds": 1}])
    assert seen == []
    with database.session() as session:
        session.execute(text("UPDATE rentals SET status = 'stopped' WHERE id = 'rnt_x'"))
    assert seen == [Change(everything=True)]
    with database.session() as session:  # rolled back: nothing happened, nothing is said
        session.execute(text("UPDATE rentals SET handle = NULL WHERE id = 'rnt_x'"))
        session.rollback()
    assert seen == [Change(everything=True)]
