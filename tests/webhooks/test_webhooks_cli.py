"""`gpubroker webhooks add|list|test|deliveries|rm` against a live broker and a loopback receiver
that verifies each signature with the secret the CLI printed once."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from broker.cli import app as cli
from broker.settings import CoreSettings
from tests.cli.live import Live, live_broker
from tests.webhooks.conftest import SECRET_KEY, Receiver


@pytest.fixture
def live(make_settings: Callable[..., CoreSettings], tmp_path: Path) -> Iterator[Live]:
    webhooks = {
        "secret_key": SECRET_KEY,
        "webhook_allow_private": True,
        "webhook_retry_seconds": (0,),
    }
    with live_broker(make_settings, tmp_path / "config", **webhooks) as broker:
        yield broker


def gpubroker(live: Live, *args: str) -> Result:
    return CliRunner().invoke(cli, ["webhooks", *args], env=live.env())


def test_add_list_test_deliveries_and_rm(live: Live, receiver: Receiver) -> None:
    added = gpubroker(live, "add", receiver.url, "--event", "rental.running")
    assert added.exit_code == 0, added.output
    found = re.search(r"webhook (whk_\S+): .* <- rental\.running", added.stdout)
    secret = re.search(r"shown once, keep it\): (whsec_\S+)", added.stdout)
    assert found and secret, added.stdout
    hook_id, receiver.secret = found[1], secret[1]

    listed = gpubroker(live, "list")
    assert hook_id in listed.stdout and receiver.url in listed.stdout
    assert "whsec_" not in listed.stdout
    as_json = json.loads(gpubroker(live, "list", "--json").stdout)
    assert [h["id"] for h in as_json["data"]] == [hook_id]

    receiver.answers = [500]
    tested = gpubroker(live, "test", hook_id)
    assert tested.exit_code == 0, tested.output
    event_id = re.search(r"test event (msg_\S+) queued", tested.stdout)
    assert event_id, tested.stdout
    assert live.app.state.deliverer.run_once() == 1
    assert live.app.state.deliverer.run_once() == 1
    assert receiver.ids() == [event_id[1]] * 2
    assert all(r.verified for r in receiver.wait_for(2))

    shown = gpubroker(live, "deliveries", hook_id, "--wide").stdout.splitlines()
    assert shown[0].split() == ["TIME", "EVENT", "TYPE", "TRY", "STATUS", "ERROR"]
    assert [line.split()[2:6] for line in shown[1:]] == [
        [event_id[1], "webhook.test", "2", "200"],
        [event_id[1], "webhook.test", "1", "500"],
    ]

    removed = gpubroker(live, "rm", hook_id)
    assert removed.exit_code == 0 and f"removed webhook {hook_id}" in removed.stdout
    gone = gpubroker(live, "deliveries", hook_id)
    assert gone.exit_code == 1 and "gpubroker webhooks list" in gone.stderr
    assert "no webhooks" in gpubroker(live, "list").stdout


def test_a_refused_url_names_the_field_and_exits_1(live: Live) -> None:
    refused = gpubroker(live, "add", "not a url", "--json")
    assert refused.exit_code == 1 and refused.stdout == ""
    error = json.loads(refused.stderr)["error"]
    assert error["param"] == "url" and error["code"] == "invalid_request"
    unknown = gpubroker(live, "add", "https://hooks.example.com/x", "-e", "rental.exploded")
    assert unknown.exit_code == 1 and "rental.exploded" in unknown.stderr
