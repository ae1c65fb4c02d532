"""Crash chaos: SIGKILL the broker at random points of its work, dozens of times, lose nothing.

Each round, requests of one kind (rent, start, stop, terminate), with a few others mixed in,
are in flight when the broker is killed after a short random delay; or the kill waits for a
moment when one of the periodic jobs (the meter above all) holds its advisory lock, that is,
is in the middle of its run. The simulators hold each provision's answer back for a random
while, so kills also land between a provider creating an instance and the broker recording it.
Then a fresh broker starts on the same database and, once its status job and reconciliation
have had time to run, the whole deployment is audited:

- no rental is stuck: each is running, stopped, terminated, failed or interrupted, with no
  action in flight;
- nothing is held that should not be: every open hold belongs to a live rental, and the
  ledger's invariants hold to the micro-dollar;
- no orphan: every instance alive at a provider belongs to a live rental, and every running or
  stopped rental has its instance.

At the end everything is terminated, and nothing may stay held or alive anywhere. The random
choices come from one seeded generator (`CHAOS_SEED` overrides it), so a failing sequence of
rounds can be replayed; where exactly a kill lands still depends on the machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.replicas.conftest import (
    HTTP_TIMEOUT,
    Account,
    Deployment,
    RentalRow,
    Replica,
    wait_for,
)

SEED = int(os.environ.get("CHAOS_SEED", "20261202"))
ROUNDS = 32
MAX_LIVE = 6
CREDIT = 1_000_000_000  # 1,000 USD: enough for every hold of the run
KILL_POINTS = ("rent", "start", "stop", "terminate", "job")
JOBS = ("meter", "meter", "rental-status", "reconcile")
STABLE = {"running", "stopped", "terminated", "failed", "interrupted"}
LIVE = {"provisioning", "running", "stopped"}
WORKLOADS = (
    {"mode": "custom", "image": "vllm/vllm-openai:latest", "ports": [8000]},
    {"mode": "ssh", "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIChaosChaosChaos chaos"},
)


@dataclass
class Chaos:
    """The run's state: the broker now serving, what to rent, and what was seen."""

    deployment: Deployment
    account: Account
    rng: random.Random
    broker: Replica
    offers: list[dict[str, Any]] = field(default_factory=list)  # rent bodies, one per provider
    answers: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)

    def call(self, kind: str, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        """One request to the current broker; a dropped connection is an expected answer."""
        try:
            response = httpx.request(
                method,
                f"{self.broker.url}{path}",
                json=body,
                headers=self.account.headers,
                timeout=HTTP_TIMEOUT,
            )
        except httpx.TransportError:
            self.answers[f"{kind} dropped"] += 1
            return
        self.answers[f"{kind} {response.status_code}"] += 1
        if response.status_code == 500:
            self.server_errors.append(f"{method} {path}: {response.text[:300]}")

    def requests_for(self, kind: str, rows: list[RentalRow]) -> list[Callable[[], None]]:
        """A request of `kind` against a rental it applies to (or the next kind that has one)."""
        live = [r for r in rows if r.status in LIVE]
        stopped = [r for r in rows if r.status == "stopped"]
        running = [r for r in rows if r.status == "running"]
        if kind == "start" and not stopped:
            kind = "stop"  # nothing to start yet: stop something, for a later round
        if kind in ("stop", "terminate") and not (running if kind == "stop" else live):
            kind = "rent"
        if kind == "rent" and len(live) >= MAX_LIVE:
            kind = "terminate"  # enough is live: make room instead
        if kind == "rent":
            body = self.rng.choice(self.offers)
            return [lambda: self.call(kind, "POST", "/v1/rentals", body)]
        target = self.rng.choice({"start": stopped, "stop": running}.get(kind, live)).id
        if kind == "terminate":
            return [lambda: self.call(kind, "DELETE", f"/v1/rentals/{target}")]
        return [lambda: self.call(kind, "POST", f"/v1/rentals/{target}/{kind}")]

    def round(self) -> None:
        rows = self.deployment.rentals()
        point = self.rng.choice(KILL_POINTS)
        kinds = [point] * self.rng.randint(1, 3) if point != "job" else []
        kinds += [self.rng.choice(KILL_POINTS[:4]) for _ in range(self.rng.randint(0, 2))]
        self.deployment.simulators.set_knobs(accept_delay_seconds=self.rng.uniform(0, 0.4))
        calls = [call for kind in kinds for call in self.requests_for(kind, rows)]
        threads = [threading.Thread(target=call, daemon=True) for call in calls]
        for thread in threads:
            thread.start()
        if point == "job":
            self._kill_during(self.rng.choice(JOBS))
        else:
            time.sleep(self.rng.uniform(0.02, 1.2))
            self.kills[point] += 1
            self.broker.kill()
        for thread in threads:
            thread.join(timeout=HTTP_TIMEOUT)
        self.broker = self.deployment.restart()

    def _kill_during(self, job: str) -> None:
        """Kill the broker while it runs `job` (caught holding the job's lock), else anyway."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.deployment.job_holder(job) == self.broker.name:
                time.sleep(self.rng.uniform(0, 0.005))
                self.kills[f"during {job}"] += 1
                self.broker.kill()
                return
            time.sleep(0.002)
        self.kills[f"waiting for {job}"] += 1
        self.broker.kill()


def test_sigkill_at_random_points_loses_nothing(deployment: Deployment) -> None:
    rng = random.Random(SEED)
    # A placement or an action its broker died in is recovered after a second or two.
    deployment.overrides.update(
        GPUBROKER_PROVISION_GRACE_SECONDS="1",
        GPUBROKER_ACTION_TIMEOUT_SECONDS="2",
        GPUBROKER_PROVIDER_TIMEOUT_SECONDS="3",
    )
    (broker,) = deployment.start(1, migrate=True)
    account = deployment.create_account(CREDIT, via=broker)
    chaos = Chaos(deployment, account, rng, broker)
    chaos.offers = rentable_offers(chaos)
    assert len(chaos.offers) >= 3, chaos.offers

    for number in range(ROUNDS):
        audit(chaos, f"before round {number}")
        chaos.round()
    audit(chaos, "after the last round")

    end_everything(chaos)
    audit(chaos, "after terminating everything")
    balances = deployment.invariants(account)
    assert balances.held == 0
    assert all(not ids for ids in deployment.simulators.live_instances().values())
    assert chaos.server_errors == [], chaos.server_errors
    print(f"chaos seed {SEED}: {ROUNDS} kills {dict(chaos.kills)}; answers {dict(chaos.answers)}")


def rentable_offers(chaos: Chaos) -> list[dict[str, Any]]:
    """A rent body per provider: its cheapest one-GPU on-demand offer, with a workload it takes."""
    bodies = []
    for provider in chaos.deployment.providers:
        offers = httpx.get(
            f"{chaos.broker.url}/v1/offers",
            params={"provider": provider, "tier": "on_demand", "gpu_count": 1, "limit": 50},
        ).json()["data"]
        roomy = [o for o in offers if o["available_count"] is None or o["available_count"] >= 4]
        for offer in roomy[:1]:
            for workload in WORKLOADS:
                body = {"offer_id": offer["id"], **workload}
                response = httpx.post(
                    f"{chaos.broker.url}/v1/rentals",
                    json=body,
                    headers=chaos.account.headers,
                    timeout=HTTP_TIMEOUT,
                )
                if response.status_code == 201:
                    bodies.append(body)
                    break
    return bodies


def audit(chaos: Chaos, when: str) -> None:
    """Wait for the deployment to settle, then check that nothing is stuck, held or orphaned."""
    deployment = chaos.deployment
    problems: list[str] = []

    def settled() -> bool:
        problems[:] = unsettled(deployment)
        return not problems

    try:
        wait_for(settled, "the deployment to settle", seconds=30, every=0.2)
    except AssertionError:
        log = chaos.broker.log_tail(40)
        raise AssertionError(f"{when}, not settled: {problems}\n{log}") from None
    with deployment.snapshot() as snapshot:
        rows = snapshot.rentals()
        open_holds = snapshot.open_holds(chaos.account)
        balances = snapshot.invariants(chaos.account)
        charged = snapshot.charges(chaos.account)
    live_holds = {r.hold_id for r in rows if r.status in LIVE and r.hold_id}
    leaked = {h: held for h, held in open_holds.items() if h not in live_holds}
    assert not leaked, f"{when}: open holds of no live rental: {leaked}"
    assert balances.held == sum(open_holds.values())
    assert balances.balance == CREDIT - charged


def unsettled(deployment: Deployment) -> list[str]:
    """What still keeps the deployment from a settled state (nothing, once it has settled)."""
    rows = deployment.rentals()
    problems = [f"{r.id} is {r.status}" for r in rows if r.status not in STABLE]
    problems += [f"{r.id} has {r.action} in flight" for r in rows if r.action is not None]
    live = deployment.simulators.live_instances()
    owned = {
        (r.provider, r.handle.rsplit(":", 1)[-1])
        for r in rows
        if r.status in LIVE and r.provider and r.handle
    }
    problems += [
        f"orphan {provider} instance {instance}"
        for provider, instances in live.items()
        for instance in instances
        if (provider, instance) not in owned
    ]
    problems += [
        f"{r.id} is {r.status} but {r.provider} has no instance {r.handle}"
        for r in rows
        if r.status in ("running", "stopped")
        and (r.handle or "").rsplit(":", 1)[-1] not in live.get(r.provider, [])
    ]
    return problems


def end_everything(chaos: Chaos) -> None:
    """Terminate every live rental through the API (retrying what is still starting)."""

    def all_ended() -> bool:
        live = [r for r in chaos.deployment.rentals() if r.status in LIVE]
        for row in live:
            with contextlib.suppress(httpx.TransportError):
                httpx.delete(
                    f"{chaos.broker.url}/v1/rentals/{row.id}",
                    headers=chaos.account.headers,
                    timeout=HTTP_TIMEOUT,
                )
        return not live

    wait_for(all_ended, "every rental to end", seconds=60)


pytestmark = pytest.mark.timeout(400)
