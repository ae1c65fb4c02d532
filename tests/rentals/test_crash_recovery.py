"""The broker dies (SIGKILL) right after a provider accepted a provision, before it could record
the instance. Restarted, its reconciliation terminates the orphan and fails the rental; the
ledger invariants hold and the customer paid nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from broker import accounts, ledger
from broker.db import Database
from broker.rentals.tables import Rental
from tests.brokers import Sim
from tests.replicas.processes import GPUBROKER, free_port


def wait_for(condition, what: str, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class BrokerProcess:
    """`gpubroker serve` as a separate process, configured only through its environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [GPUBROKER, "serve", "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        try:
            health = httpx.get(f"{self.url}/healthz", timeout=1).json()
        except httpx.TransportError:
            assert self.process.poll() is None, "the broker exited; see its log"
            return False
        return health["providers"]["empiriolabs"]["offers"] > 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self._log.close()


@pytest.fixture
def processes() -> Iterator[list[BrokerProcess]]:
    started: list[BrokerProcess] = []
    yield started
    for process in started:
        process.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_sigkill_after_accept_leaves_no_orphan(
    database_url: str, sims: dict[str, Sim], processes: list[BrokerProcess], tmp_path: Path
) -> None:
    sim = sims["empiriolabs"]
    db = Database(database_url)
    with db.session() as session:
        account, key = accounts.create_account(session, "crash")
        ledger.grant(session, account.id, 50_000_000, "credit")
    env = {
        "GPUBROKER_DATABASE_URL": database_url,
        "GPUBROKER_PROVIDERS": "empiriolabs",
        "GPUBROKER_EMPIRIOLABS_BASE_URL": sim.server.url,
        "GPUBROKER_EMPIRIOLABS_API_KEY": "demo-key",
        "GPUBROKER_ADMIN_KEY": "crash-admin",
        "GPUBROKER_PROVIDER_TIMEOUT_SECONDS": "60",
        "GPUBROKER_RECONCILE_SECONDS": "3600",
        "GPUBROKER_PROVISION_GRACE_SECONDS": "0",
    }
    first = BrokerProcess(env, tmp_path / "broker.log")
    processes.append(first)
    wait_for(first.ready, "the broker to start")
    offer = httpx.get(f"{first.url}/v1/offers", params={"provider": "empiriolabs"}).json()["data"][
        0
    ]

    # The provider accepts, then answers late: after the kill, and before the sims stop.
    sim.knobs.accept_delay_seconds = 5
    rent = threading.Thread(
        target=lambda: _post_quietly(
            f"{first.url}/v1/rentals",
            {"offer_id": offer["id"], "mode": "custom", "image": "busybox", "ports": [80]},
            key.secret,
        ),
        daemon=True,
    )
    rent.start()
    wait_for(lambda: len(sim.instances()) == 1, "the provider to accept")
    first.kill()

    with db.session(read_only=True) as session:
        [rental] = session.exec(select(Rental)).all()
        assert (rental.status, rental.handle) == ("provisioning", None)
        assert ledger.balances(session, account.id).held > 0

    sim.knobs.accept_delay_seconds = 0
    second = BrokerProcess({**env, "GPUBROKER_RECONCILE_SECONDS": "1"}, tmp_path / "broker.log")
    processes.append(second)
    wait_for(second.ready, "the broker to restart")

    def settled() -> bool:
        live = [i for i in sim.instances() if i["status"] not in ("destroyed", "failed")]
        with db.session(read_only=True) as session:
            status = session.exec(select(Rental.status)).one()
        return not live and status == "failed"

    wait_for(settled, "reconciliation to clean up")
    with db.session(read_only=True) as session:
        balances = ledger.check_invariants(session, account.id)
    assert (balances.balance, balances.held) == (50_000_000, 0)
    db.dispose()


def _post_quietly(url: str, body: dict[str, object], key: str) -> None:
    # The broker is killed mid-request: a dropped connection is the expected outcome.
    with contextlib.suppress(httpx.TransportError):
        httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=90)
