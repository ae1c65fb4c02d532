"""`gpubroker offers` and `gpubroker gpus` against a broker on a real loopback server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from broker.cli import app as cli
from broker.settings import CoreSettings
from pricing.offer import Tier
from tests.catalog_data import catalog_broker
from tests.cli.support import run_cli, serve_url


@pytest.fixture
def broker_url(
    make_settings: Callable[..., CoreSettings], static_providers: dict[str, Any]
) -> Iterator[str]:
    yield from serve_url(catalog_broker(make_settings(), static_providers))


def run(url: str, *args: str) -> str:
    return run_cli(url, *args, columns=220)


def test_offers_json_applies_the_filters(broker_url: str) -> None:
    body = json.loads(run(broker_url, "offers", "--gpu", "rtx 4090", "--spot", "--json"))
    assert [o["id"] for o in body["data"]] == ["alpha:4090:eu:spot"]
    assert body["data"][0]["tier"] == Tier.SPOT.value


def test_offers_table_shows_prices_and_ids(broker_url: str) -> None:
    output = run(broker_url, "offers", "--gpu", "4090", "--max-price", "0.40")
    assert "showing all 3" in output
    for text in ("alpha:4090:eu:spot", "beta:4090", "$0.287/h", "$0.289899/h", "Quebec, CA"):
        assert text in output


def test_gpus_table(broker_url: str) -> None:
    output = run(broker_url, "gpus")
    assert "RTX 4090" in output and "$0.35/h" in output and "alpha, beta" in output


def test_bad_filter_is_reported_not_a_traceback(broker_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["offers", "--tier", "cheap"], env={"GPUBROKER_URL": broker_url}
    )
    assert result.exit_code == 1
    assert "invalid_request" in result.output and "tier" in result.output


def test_unreachable_broker_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["gpus"], env={"GPUBROKER_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    assert "cannot reach the broker" in result.output
