"""`gpubroker rent` and the one-line rental actions against a live broker: the plan is shown and
asked about, the price shown is the price rented, limits travel, Ctrl-C leaves the rental be."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from broker import cli_output
from broker.cli import app as cli
from broker.client import Client
from broker.client.calls import Call
from tests.cli.live import Live

WORKLOAD = ["--mode", "custom", "--image", "busybox", "--port", "80"]


def gpubroker(live: Live, *args: str, answer: str | None = None, key: str | None = None) -> Result:
    env = live.env(**({"GPUBROKER_API_KEY": key} if key else {}))
    return CliRunner().invoke(cli, list(args), env=env, input=answer)


def an_offer(live: Live) -> dict[str, Any]:
    listed = gpubroker(live, "offers", "--provider", "empiriolabs", "--gpu-count", "1", "--json")
    offer: dict[str, Any] = json.loads(listed.stdout)["data"][0]
    return offer


def rental_ids(live: Live) -> list[str]:
    with Client(live.url, live.api_key) as client:
        return [r.id for r in client.iter_rentals()]


def test_without_a_terminal_and_without_yes_nothing_is_rented(live: Live) -> None:
    offer = an_offer(live)
    result = gpubroker(live, "rent", offer["id"], *WORKLOAD)
    assert result.exit_code == 2
    assert f"offer: {offer['id']}" in result.stdout
    for part in ("price: $", "hold: $", "risk: ", "limits: none"):
        assert part in result.stdout
    (line,) = result.stderr.splitlines()
    assert "--yes" in line
    assert rental_ids(live) == []


def test_the_plan_is_asked_about_and_no_means_nothing_rented(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_output, "interactive", lambda: True)
    offer = an_offer(live)
    declined = gpubroker(live, "rent", offer["id"], *WORKLOAD, answer="n\n")
    assert declined.exit_code == 0 and "nothing rented" in declined.stderr
    assert rental_ids(live) == []
    accepted = gpubroker(live, "rent", offer["id"], *WORKLOAD, answer="y\n")
    assert accepted.exit_code == 0, accepted.output
    (rental_id,) = rental_ids(live)
    assert f"rented {rental_id}" in accepted.stdout
    assert "rental key (shown once, keep it): rk_" in accepted.stdout


def test_the_price_shown_is_sent_as_expected_price_and_limits_travel(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Call[Any]] = []
    send = Client.send

    def recording(client: Client, call: Call[Any]) -> Any:
        sent.append(call)
        return send(client, call)

    monkeypatch.setattr(Client, "send", recording)
    offer = an_offer(live)
    limits = ["--max-duration", "2h", "--max-cost", "5", "--idle", "30m"]
    result = gpubroker(live, "rent", offer["id"], *WORKLOAD, *limits, "--yes", "--json")
    assert result.exit_code == 0, result.output
    (rent,) = [c for c in sent if c.method == "POST" and c.path == "/v1/rentals"]
    assert rent.json["expected_price"] == offer["price_per_gpu_hour"]
    assert rent.headers["Idempotency-Key"]
    assert "limits: ends after 2h running; ends at $5.00 spent" in result.stderr
    rental = json.loads(result.stdout)
    assert rental["max_duration_seconds"] == 7200 and rental["idle_timeout_seconds"] == 1800
    assert float(rental["max_cost"]) == 5


def test_ctrl_c_while_waiting_leaves_the_rental_running_and_says_how_to_end_it(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "wait", interrupted)
    result = gpubroker(live, "rent", an_offer(live)["id"], *WORKLOAD, "--yes", "--wait")
    assert result.exit_code == 130
    (rental_id,) = rental_ids(live)
    assert f"rented {rental_id}" in result.stdout and "rental key (shown once" in result.stdout
    assert "goes on" in result.stderr and f"gpubroker terminate {rental_id}" in result.stderr
    assert "Traceback" not in result.output
    with Client(live.url, live.api_key) as client:
        assert client.rental(rental_id).status in ("provisioning", "running")


def test_stop_start_terminate_print_one_line(live: Live) -> None:
    rented = gpubroker(live, "rent", an_offer(live)["id"], *WORKLOAD, "--yes", "--wait")
    assert rented.exit_code == 0, rented.output
    (rental_id,) = rental_ids(live)
    stopped = gpubroker(live, "stop", rental_id)
    (line,) = stopped.stdout.splitlines()
    assert line.startswith(f"{rental_id} ")
    with Client(live.url, live.api_key) as client:
        client.wait(rental_id, "stopped", timeout=30, interval=0.05)
    started = gpubroker(live, "start", rental_id, "--wait")
    assert started.exit_code == 0, started.output
    (line,) = started.stdout.splitlines()
    assert line.startswith(f"{rental_id} running:")
    ended = gpubroker(live, "terminate", rental_id)
    (line,) = ended.stdout.splitlines()
    assert line.startswith(f"{rental_id} terminated:") and "final cost $" in line


def test_too_little_credit_names_the_command_that_adds_some(live: Live) -> None:
    poor = live.new_account(credit="0.01")
    result = gpubroker(live, "rent", an_offer(live)["id"], *WORKLOAD, "--yes", key=poor)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "insufficient_credit" in line and "gpubroker topup" in line
