"""Real replicas: the broker as separate `gpubroker serve` processes on one PostgreSQL schema.

Nothing here runs inside the test process but the clients. The provider simulators run in a
process of their own (`scripts/run_simulators.py`), started once per test module, so a broker
killed with SIGKILL takes none of them down and every replica sees the same providers. Each test
gets a scratch PostgreSQL schema, and a `Deployment` on it: the environment every replica is
started with (database, operator key, simulators, job intervals of about a second), the
replicas themselves, and a direct `Database` handle for reading what the broker wrote (ledger
invariants, holds, rentals), the way an auditor would.

A restart costs Python's imports of the whole broker before `serve` even begins, which would
dominate a test that restarts it dozens of times. A restarted replica is therefore *warm*:
forked by a server that has done those imports once per session (see `processes.py`), it runs
the very same `gpubroker serve` command line, so a restart after a kill costs only the broker's
own start.

Clients are real and parallel: each request is its own `httpx` call from its own thread, and
`in_parallel` releases them together from a barrier.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from broker import ledger
from broker.db import Database, scratch_schema
from broker.jobs import lock_key
from tests.brokers import Account
from tests.conftest import POSTGRES_URL
from tests.replicas.processes import ForkServer, Replica

ROOT = Path(__file__).resolve().parents[2]
RUN_SIMULATORS = ROOT / "scripts" / "run_simulators.py"
ADMIN_KEY = "adm_replicas_test_key"
JOB_SECONDS = 1.0
HTTP_TIMEOUT = 120.0
T = TypeVar("T")

# Statuses the simulators give an instance that no longer exists, or can never run again.
_ENDED_AT_PROVIDER = {"destroyed", "failed", "terminated", "preempted", "deleted"}


def wait_for(
    condition: Callable[[], T], what: str, seconds: float = 60.0, every: float = 0.05
) -> T:
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(every)


def in_parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run every call on its own thread, all released at once; results in the calls' order."""
    if not calls:
        return []
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


# -- provider simulators -------------------------------------------------------------------


@dataclass(frozen=True)
class Simulators:
    """The simulators' process: where each provider is, and the broker environment for them."""

    urls: dict[str, str]
    env: dict[str, str]

    def instances(self, provider: str) -> list[dict[str, Any]]:
        """Every instance the simulator has ever had, with its provider-side status."""
        body = httpx.get(f"{self.urls[provider]}/_sim/instances", timeout=30).json()
        return list(body["instances"])

    def live_instances(self) -> dict[str, list[str]]:
        """Per provider, the ids of instances that exist and could still run (or run now)."""
        return {
            name: [str(i["id"]) for i in self.instances(name) if live_at_provider(name, i)]
            for name in self.urls
        }

    def set_knobs(self, **knobs: float) -> None:
        for url in self.urls.values():
            httpx.put(f"{url}/_sim/knobs", json=knobs, timeout=30).raise_for_status()


def live_at_provider(provider: str, instance: dict[str, Any]) -> bool:
    status = str(instance.get("status", "")).lower()
    if status in _ENDED_AT_PROVIDER:
        return False
    # A ComputeGPU marketplace rental that is "stopped" has ended; it never starts again.
    listing = provider == "computegpu" and instance.get("family") == "listing"
    return not (listing and status == "stopped")


@pytest.fixture(scope="module")
def simulators() -> Iterator[Simulators]:
    command = [sys.executable, str(RUN_SIMULATORS), "--json", "--until-stdin-closes"]
    command += ["--provision-seconds", "0.3"]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stdin is not None and process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        pytest.fail("the simulators did not start; run scripts/run_simulators.py to see why")
    started = json.loads(line)
    yield Simulators(urls=started["urls"], env=started["env"])
    process.stdin.close()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the deployment ------------------------------------------------------------------------


@dataclass
class RentalRow:
    """A rental as the database has it (the columns every version of the schema has)."""

    id: str
    status: str
    provider: str | None
    handle: str | None
    hold_id: str | None
    action: str | None  # a user's action in flight, if one is


@dataclass
class Snapshot:
    """Reads that see the database at one moment (one REPEATABLE READ transaction)."""

    session: Session

    def _rows(self, sql: str, **params: object) -> list[Any]:
        return list(self.session.connection().execute(text(sql), params))

    def invariants(self, account: Account) -> ledger.Balances:
        """The account's balances, once `ledger.check_invariants` has found them exact."""
        return ledger.check_invariants(self.session, account.id)

    def rentals(self) -> list[RentalRow]:
        sql = "SELECT id, status, provider, handle, hold_id, action FROM rentals"
        return [RentalRow(*row) for row in self._rows(sql)]

    def billing(self, rental_id: str) -> tuple[int, int]:
        """A rental's billed seconds and what they cost, over all its placements."""
        sql = (
            "SELECT billed_seconds + earlier_seconds, charged + earlier_charged "
            "FROM rentals WHERE id = :r"
        )
        ((seconds, cost),) = self._rows(sql, r=rental_id)
        return int(seconds), int(cost)

    def open_holds(self, account: Account) -> dict[str, int]:
        """Hold id -> amount still held, for every open hold of the account."""
        sql = "SELECT id, held FROM holds WHERE account_id = :a AND status = 'open'"
        return {hold_id: int(held) for hold_id, held in self._rows(sql, a=account.id)}

    def charges(self, account: Account) -> int:
        """Everything charged to the account, from its ledger entries."""
        sql = (
            "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries "
            "WHERE account_id = :a AND kind = 'charge'"
        )
        return int(self._rows(sql, a=account.id)[0][0])


@dataclass
class Deployment:
    """Replicas of one broker on one PostgreSQL schema, and a direct look at that database."""

    database_url: str
    simulators: Simulators
    workdir: Path
    fork_server: ForkServer
    overrides: dict[str, str] = field(default_factory=dict)
    replicas: list[Replica] = field(default_factory=list)
    _db: Database | None = None
    _count: int = 0

    # -- environment and processes

    def environment(self, name: str) -> dict[str, str]:
        """What a replica is started with; nothing of the test runner's GPUBROKER_* leaks in."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
        # Tell the replicas apart in pg_stat_activity.
        separator = "&" if "?" in self.database_url else "?"
        return {
            **base,
            **self.simulators.env,
            "GPUBROKER_DATABASE_URL": f"{self.database_url}{separator}application_name={name}",
            "GPUBROKER_ADMIN_KEY": ADMIN_KEY,
            "GPUBROKER_SECRET_KEY": base64.urlsafe_b64encode(
                b"replicas-test-secret-key-32byte!"
            ).decode(),
            "GPUBROKER_METER_SECONDS": str(JOB_SECONDS),
            "GPUBROKER_STATUS_SECONDS": str(JOB_SECONDS),
            "GPUBROKER_RECONCILE_SECONDS": str(JOB_SECONDS),
            "GPUBROKER_REFRESH_SECONDS": "2",
            "GPUBROKER_REFRESH_JITTER_SECONDS": "0",
            "GPUBROKER_STALE_AFTER_SECONDS": "600",  # a busy test machine never staledates offers
            "GPUBROKER_PROVISION_GRACE_SECONDS": "2",
            "GPUBROKER_PROVIDER_TIMEOUT_SECONDS": "10",
            "GPUBROKER_PROVIDER_RETRY_ATTEMPTS": "2",
            **self.overrides,
        }

    @property
    def providers(self) -> list[str]:
        return list(self.simulators.urls)

    def _next_replica(self) -> tuple[str, dict[str, str], Path]:
        """The next replica's name, its environment and its log file."""
        self._count += 1
        name = f"replica-{self._count}"
        return name, self.environment(name), self.workdir / f"{name}.log"

    def start(self, count: int = 1, *, migrate: bool = False) -> list[Replica]:
        """`count` new `gpubroker serve` processes, started together; returns once all serve."""
        flags = ["--migrate"] if migrate else []
        started = [Replica.cold(*self._next_replica(), *flags) for _ in range(count)]
        self.replicas += started
        for replica in started:
            wait_for(lambda r=replica: r.ready(self.providers), f"{replica.name} to serve")
        return started

    def restart(self) -> Replica:
        """A fresh, warm replica, once it serves."""
        replica = Replica.warm(*self._next_replica(), self.fork_server)
        self.replicas.append(replica)
        wait_for(lambda: replica.ready(self.providers), f"{replica.name} to serve")
        return replica

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        if self._db is not None:
            self._db.dispose()

    # -- the operator's API

    def create_account(self, credit_micros: int, via: Replica | None = None) -> Account:
        url = (via or self.replicas[0]).url
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        made = httpx.post(f"{url}/v1/admin/accounts", json={"name": "renter"}, headers=admin)
        assert made.status_code == 201, made.text
        account = Account(made.json()["account_id"], made.json()["api_key"])
        granted = httpx.post(
            f"{url}/v1/admin/accounts/{account.id}/credits",
            json={"amount": usd(credit_micros), "reason": "test credit"},
            headers=admin,
        )
        assert granted.status_code == 201, granted.text
        return account

    # -- the database, read directly

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.database_url)
        return self._db

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """One consistent view of the database while the replicas go on writing to it."""
        engine = self.db.engine.execution_options(isolation_level="REPEATABLE READ")
        with Session(engine) as session:
            yield Snapshot(session)

    def invariants(self, account: Account) -> ledger.Balances:
        with self.snapshot() as snapshot:
            return snapshot.invariants(account)

    def rentals(self) -> list[RentalRow]:
        with self.snapshot() as snapshot:
            return snapshot.rentals()

    def charges(self, account: Account) -> int:
        with self.snapshot() as snapshot:
            return snapshot.charges(account)

    def job_holder(self, job: str) -> str | None:
        """The application name of the replica running `job` right now, if one is."""
        key = lock_key(job) & 0xFFFF_FFFF_FFFF_FFFF
        with self.db.engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFF_FFFF},
            ).scalar()


@pytest.fixture
def replica_database_url() -> Iterator[str]:
    """An empty scratch schema, not migrated: the replicas migrate it (`serve --migrate`)."""
    try:
        with scratch_schema(POSTGRES_URL, "replicas") as url:
            yield url
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    """Forks warm replicas for every deployment of the session; started on first use."""
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def deployment(
    replica_database_url: str, simulators: Simulators, tmp_path: Path, fork_server: ForkServer
) -> Iterator[Deployment]:
    made = Deployment(replica_database_url, simulators, tmp_path, fork_server)
    yield made
    made.close()


def usd(micros: int) -> str:
    """Micro-dollars as the API's decimal string."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
