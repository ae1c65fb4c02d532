"""Two `gpubroker serve` replicas on one PostgreSQL database, driven by parallel clients.

Money is what a second replica can break, so every check here is exact to the micro-dollar:
racing rents from one account win exactly as many one-hour holds as its credit covers, one
rental metered by two replicas is charged once for each second, and a replica killed with
SIGKILL leaves the other metering. Both replicas start with `--migrate` on an empty schema at
the same moment, which is also how the migration's advisory lock is tested.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
from alembic.script import ScriptDirectory
from sqlalchemy import text

from broker.migrations import alembic_config
from broker.rentals.billing import cost_of, hold_for
from pricing.money import to_micros
from tests.replicas.conftest import (
    HTTP_TIMEOUT,
    JOB_SECONDS,
    Account,
    Deployment,
    Replica,
    in_parallel,
    wait_for,
)

WORKLOAD = {"mode": "custom", "image": "vllm/vllm-openai:latest", "ports": [8000]}
PROVIDER = "empiriolabs"  # can stop and start, and runs the custom workload
ONE_HOUR = 3600  # GPUBROKER_MIN_HOLD_SECONDS, its default


def cheap_offer(replica: Replica, capacity: int) -> dict[str, Any]:
    """The cheapest one-GPU on-demand offer with room for `capacity` rentals at once."""
    response = httpx.get(
        f"{replica.url}/v1/offers",
        params={"provider": PROVIDER, "tier": "on_demand", "gpu_count": 1, "limit": 500},
    )
    assert response.status_code == 200, response.text
    roomy = [o for o in response.json()["data"] if (o["available_count"] or 0) >= capacity]
    assert roomy, f"no {PROVIDER} offer has room for {capacity} rentals"
    return roomy[0]


def rent(replica: Replica, account: Account, offer_id: str) -> httpx.Response:
    return httpx.post(
        f"{replica.url}/v1/rentals",
        json={"offer_id": offer_id, **WORKLOAD},
        headers=account.headers,
        timeout=HTTP_TIMEOUT,
    )


def rental(replica: Replica, account: Account, rental_id: str) -> dict[str, Any]:
    response = httpx.get(f"{replica.url}/v1/rentals/{rental_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


def terminate(replica: Replica, account: Account, rental_id: str) -> dict[str, Any]:
    response = httpx.delete(
        f"{replica.url}/v1/rentals/{rental_id}", headers=account.headers, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "terminated"
    return response.json()


def summary(responses: list[httpx.Response]) -> str:
    odd = [f"{r.status_code} {r.text[:200]}" for r in responses if r.status_code not in (201, 402)]
    return f"{Counter(r.status_code for r in responses)}; unexpected: {odd[:5]}"


def head_revision() -> str | None:
    """The newest migration's revision."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_revision(deployment: Deployment) -> str:
    with deployment.db.engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_parallel_rents_through_both_replicas_win_exactly_what_the_credit_covers(
    deployment: Deployment,
) -> None:
    replicas = deployment.start(2, migrate=True)  # both migrate the empty schema at once
    assert schema_revision(deployment) == head_revision()
    rounds = ((16, 3), (150, 10))  # parallel rents, and how many one-hour holds the credit covers
    offer = cheap_offer(replicas[0], capacity=max(wins for _, wins in rounds))
    hold = hold_for(to_micros(offer["price_per_hour"]), ONE_HOUR)

    for parallel, affordable in rounds:
        credit = affordable * hold
        account = deployment.create_account(credit)
        responses = in_parallel(
            [lambda i=i, a=account: rent(replicas[i % 2], a, offer["id"]) for i in range(parallel)]
        )
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: affordable, 402: parallel - affordable}, summary(responses)
        refused = [r.json()["error"]["code"] for r in responses if r.status_code == 402]
        assert set(refused) == {"insufficient_credit"}
        won = [r.json() for r in responses if r.status_code == 201]
        assert all(to_micros(w["hold"]) == hold for w in won)

        with deployment.snapshot() as snapshot:
            balances = snapshot.invariants(account)
            assert balances.balance == credit - snapshot.charges(account)
            assert set(snapshot.open_holds(account)) == {
                row.hold_id for row in snapshot.rentals() if row.id in {w["id"] for w in won}
            }

        ended = in_parallel(
            [
                lambda i=i, a=account, w=w: terminate(replicas[i % 2], a, w["id"])
                for i, w in enumerate(won)
            ]
        )
        cost = sum(to_micros(e["cost"]) for e in ended)
        balances = deployment.invariants(account)
        assert (balances.balance, balances.held) == (credit - cost, 0)
        assert deployment.charges(account) == cost


def test_one_rental_is_billed_once_while_both_replicas_meter_it(deployment: Deployment) -> None:
    first, second = deployment.start(2, migrate=True)
    offer = cheap_offer(first, capacity=1)
    price = to_micros(offer["price_per_hour"])
    credit = 100_000_000
    account = deployment.create_account(credit)
    created = rent(first, account, offer["id"])
    assert created.status_code == 201, created.text
    rental_id = created.json()["id"]

    # Both replicas run the meter and the status job every second; read through the other one.
    wait_for(
        lambda: rental(second, account, rental_id)["billed_seconds"] >= 6 * JOB_SECONDS,
        "six seconds to be billed",
    )
    with deployment.snapshot() as snapshot:  # the rental and the ledger at one moment
        billed, cost = snapshot.billing(rental_id)
        charged = snapshot.charges(account)
    assert cost == cost_of(price, billed)
    assert charged == cost  # no second charge for a second already billed
    started = datetime.fromisoformat(rental(second, account, rental_id)["started_at"])
    assert billed <= (datetime.now(UTC) - started).total_seconds() + 1  # never ahead of time

    ended = terminate(second, account, rental_id)
    assert to_micros(ended["cost"]) == cost_of(price, ended["billed_seconds"])
    balances = deployment.invariants(account)
    assert deployment.charges(account) == to_micros(ended["cost"])
    assert (balances.balance, balances.held) == (credit - to_micros(ended["cost"]), 0)


def test_a_replica_killed_mid_run_leaves_the_other_metering(deployment: Deployment) -> None:
    first, second = deployment.start(2, migrate=True)
    offer = cheap_offer(first, capacity=1)
    price = to_micros(offer["price_per_hour"])
    account = deployment.create_account(100_000_000)
    created = rent(first, account, offer["id"])
    assert created.status_code == 201, created.text
    rental_id = created.json()["id"]

    def billed() -> int:
        return int(rental(survivor, account, rental_id)["billed_seconds"])

    survivor = second
    wait_for(lambda: billed() > 0, "metering to begin")
    # Kill the replica caught running the meter (or the first, if neither is caught at it);
    # then start a third and kill the other original, so whichever held the jobs has died.
    holder = _catch_running(deployment, "meter", {first.name, second.name})
    victims = [first, second] if holder != second.name else [second, first]
    for number, victim in enumerate(victims):
        survivor = next(r for r in (first, second) if r is not victim)
        if number == 1:
            (survivor,) = deployment.start(1)
        before = billed()
        victim.kill()
        wait_for(lambda b=before: billed() >= b + 2, f"billing to go on after {victim.name} died")

    with deployment.snapshot() as snapshot:
        billed_seconds, cost = snapshot.billing(rental_id)
        assert cost == cost_of(price, billed_seconds)
        assert snapshot.charges(account) == cost
    ended = terminate(survivor, account, rental_id)
    assert to_micros(ended["cost"]) == cost_of(price, ended["billed_seconds"])
    balances = deployment.invariants(account)
    assert (balances.balance, balances.held) == (100_000_000 - to_micros(ended["cost"]), 0)


def _catch_running(deployment: Deployment, job: str, names: set[str]) -> str | None:
    """The replica seen holding `job`'s advisory lock within a few runs, if it is caught."""
    try:
        return wait_for(
            lambda: (holder := deployment.job_holder(job)) in names and holder,
            f"a replica running {job}",
            seconds=5 * JOB_SECONDS,
        )
    except AssertionError:
        return None
