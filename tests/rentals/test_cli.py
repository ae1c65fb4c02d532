"""The renting commands of `gpubroker`, against a broker served on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from broker.cli import app as cli
from providers.simulators.kit import serve_in_thread
from tests.rentals.conftest import Broker


@pytest.fixture
def served(make_broker: Callable[..., Broker]) -> Iterator[tuple[Broker, dict[str, str]]]:
    broker = make_broker(credit="20.00")
    server = serve_in_thread(broker.app)
    stop = threading.Event()

    def status_job() -> None:  # what the scheduler would do
        while not stop.wait(0.05):
            broker.sync()

    thread = threading.Thread(target=status_job, daemon=True)
    thread.start()
    env = {
        "GPUBROKER_URL": server.url,
        "GPUBROKER_API_KEY": broker.headers["Authorization"][7:],
        "COLUMNS": "200",
    }
    yield broker, env
    stop.set()
    thread.join()
    server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rent_wait_list_and_terminate(served: tuple[Broker, dict[str, str]]) -> None:
    broker, env = served
    runner = CliRunner()
    offer = broker.offers(provider="empiriolabs", gpu_count=1)[0]
    rented = runner.invoke(
        cli,
        [
            "rent",
            offer["id"],
            "--mode",
            "custom",
            "--image",
            "busybox",
            "--port",
            "80",
            "--env",
            "GREETING=hi",
            "--wait",
            "--yes",
            "--json",
        ],
        env=env,
    )
    assert rented.exit_code == 0, rented.output
    rental = json.loads(rented.stdout)
    assert rental["status"] == "running" and rental["rental_key"].startswith("rk_")
    assert f"rental key (shown once, keep it): {rental['rental_key']}" in rented.stderr

    listed = runner.invoke(cli, ["rentals"], env=env)
    assert rental["id"] in listed.output and "running" in listed.output
    shown = runner.invoke(cli, ["status", rental["id"]], env=env)
    assert offer["id"] in shown.output
    wallet = runner.invoke(cli, ["wallet"], env=env)
    assert "available" in wallet.output

    ended = runner.invoke(cli, ["terminate", rental["id"]], env=env)
    (line,) = ended.stdout.splitlines()
    assert line.startswith(f"{rental['id']} terminated:") and "final cost $" in line


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rent_by_constraints_that_match_nothing(served: tuple[Broker, dict[str, str]]) -> None:
    _, env = served
    result = CliRunner().invoke(
        cli, ["rent", "--gpu", "H200", "--max-price", "0.01", "--yes"], env=env
    )
    assert result.exit_code == 1
    assert "no offer matches these constraints now" in result.stdout
    (line,) = result.stderr.splitlines()
    assert "no_capacity" in line and "max_price" in line and "gpubroker offers" in line
