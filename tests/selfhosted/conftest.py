"""The self-hosted backend on a real Docker engine, with simulated GPUs, on both databases.

`docker_engine` makes sure an engine answers and the workload image is built, by running
scripts/docker_test_engine.sh (it starts dockerd where it can). When that fails the tests fail
with what to do, with or without CI: they never skip. Each test is its own simulated host (a
unique region, so its GPUs and containers are its own even on a shared engine) with its own
allocation lock file, and every container it started is removed afterwards, pass or fail.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from broker.app import create_app
from broker.settings import CoreSettings, provider_config
from providers import selfhosted
from providers.selfhosted.adapter import SelfHostedAdapter
from tests.brokers import FakeClock, bearer, close_clients, open_account, open_client
from tests.rentals.conftest import Broker
from tests.selfhosted.support import TEST_IMAGE, containers_in, remove_all

ENGINE_SCRIPT = Path(__file__).parents[2] / "scripts" / "docker_test_engine.sh"
DOCKER_URL = selfhosted.SPEC.default_base_url or selfhosted.LOCAL_DOCKER_SOCKET
WORKLOAD: dict[str, Any] = {"mode": "custom", "image": TEST_IMAGE, "ports": [80]}


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.APIClient]:
    """A client of the engine the tests run on, once it answers and holds the test image."""
    result = subprocess.run(
        ["bash", str(ENGINE_SCRIPT)], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        where = "CI" if os.environ.get("CI") == "true" else "this machine"
        pytest.fail(
            f"the self-hosted tests need a Docker engine at {DOCKER_URL} and {where} has none "
            f"ready: {ENGINE_SCRIPT.name} said:\n{result.stdout}{result.stderr}\n"
            f"As root, run: bash {ENGINE_SCRIPT} --install",
            pytrace=False,
        )
    api = docker.APIClient(base_url=DOCKER_URL, version="auto", timeout=30)
    yield api
    api.close()


@dataclass
class Host:
    """One simulated host: its region (which names its GPUs and labels its containers)."""

    region: str
    lock_file: Path
    api: docker.APIClient

    def containers(self) -> list[dict[str, Any]]:
        return containers_in(self.api, self.region)

    def options(self, fake_gpus: str = "2xRTX 4090", **more: Any) -> dict[str, Any]:
        """The selfhosted settings of this host, as keyword arguments to `make_settings`."""
        return {
            "selfhosted_fake_gpus": fake_gpus,
            "selfhosted_region": self.region,
            "selfhosted_lock_file": str(self.lock_file),
            "selfhosted_pull_timeout_seconds": 20.0,
            **{f"selfhosted_{key}": value for key, value in more.items()},
        }


@pytest.fixture
def host(docker_engine: docker.APIClient, tmp_path: Path) -> Iterator[Host]:
    simulated = Host(f"t-{uuid.uuid4().hex[:10]}", tmp_path / "selfhosted.lock", docker_engine)
    yield simulated
    remove_all(docker_engine, simulated.region)


@pytest.fixture
def make_adapter(
    host: Host, make_settings: Callable[..., CoreSettings]
) -> Iterator[Callable[..., SelfHostedAdapter]]:
    """Adapters for this host, built from settings as the broker builds them."""
    made: list[SelfHostedAdapter] = []

    def build(fake_gpus: str = "2xRTX 4090") -> SelfHostedAdapter:
        config = provider_config(make_settings(**host.options(fake_gpus)), "selfhosted")
        assert config is not None
        adapter = SelfHostedAdapter(config)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        adapter.close()


@dataclass
class SelfHostedBroker(Broker):
    """A broker whose only provider is this test's simulated host."""

    settings: CoreSettings | None = None

    @property
    def adapter(self) -> SelfHostedAdapter:
        adapter: SelfHostedAdapter = self.app.state.refresher.adapters["selfhosted"]
        return adapter

    def refresh(self) -> None:
        self.app.state.refresher.refresh("selfhosted")


@pytest.fixture
def make_broker(
    host: Host,
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    clock: FakeClock,
) -> Iterator[Callable[..., SelfHostedBroker]]:
    """`build(fake_gpus)` a broker with a funded account; `build(restart_of=b)` restarts `b`:
    a new app and adapter on the same database and engine, for the same account."""
    opened: list[TestClient] = []

    def build(
        fake_gpus: str = "2xRTX 4090", restart_of: SelfHostedBroker | None = None
    ) -> SelfHostedBroker:
        settings = make_settings(
            database_url=database_url, providers="selfhosted", **host.options(fake_gpus)
        )
        app = create_app(settings, start_jobs=False, clock=clock)
        app.state.refresher.refresh_all()
        client = open_client(app, opened)
        if restart_of is not None:
            account_id, headers = restart_of.account_id, restart_of.headers
        else:
            made = open_account(client)
            account_id, headers = made["account_id"], bearer(made["api_key"])
        return SelfHostedBroker(client, app, clock, {}, account_id, headers, settings)

    yield build
    close_clients(opened)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
