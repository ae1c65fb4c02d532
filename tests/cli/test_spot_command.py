"""`gpubroker spot` against a broker with price history on a real loopback server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from broker.cli import app as cli
from broker.cli_catalog import SPARK_SAMPLES, verdict
from broker.schemas.catalog import SpotComparison, SpotRow
from broker.settings import CoreSettings
from pricing.spot import SPARK_BARS
from tests.cli.support import run_cli, serve_url
from tests.web.spot_catalog import spot_broker

SPARK = re.compile(f"[{SPARK_BARS}]+")


@pytest.fixture
def broker_url(
    make_settings: Callable[..., CoreSettings], static_providers: dict[str, Any]
) -> Iterator[str]:
    yield from serve_url(spot_broker(make_settings(), static_providers, datetime.now(UTC)))


def run(url: str, *args: str) -> str:
    return run_cli(url, *args, columns=200)


def line_of(output: str, first_word: str) -> str:
    (line,) = [ln for ln in output.splitlines() if ln.strip("│┃ ").startswith(first_word + " ")]
    return line


def test_table_compares_providers_and_regions(broker_url: str) -> None:
    output = run(broker_url, "spot", "--gpu", "rtx 4090")
    assert "RTX 4090: spot vs on-demand" in output
    comparison = output[: output.index("last 24 hours")]
    beta = line_of(comparison, "beta")
    for text in ("EU", "$0.30", "$0.35", "14.3%", "12.0%", "10-15%", "provider", "$0.319149"):
        assert text in beta
    quebec, us = (ln for ln in comparison.splitlines() if ln.startswith("alpha"))
    assert "Quebec, CA" in quebec and "$0.289899 *" in quebec
    assert "US" in us and "17.5%" in us and "*" not in us
    assert "spot wins: alpha, Quebec, CA at $0.289899/h effective" in output


def test_sparklines_follow_the_last_day_per_provider(broker_url: str) -> None:
    output = run(broker_url, "spot", "--gpu", "4090")
    trend = output[output.index("last 24 hours") :]
    alpha, beta = line_of(trend, "alpha"), line_of(trend, "beta")
    for line, low, high in ((alpha, "$0.287", "$0.31"), (beta, "$0.30", "$0.34")):
        (spark,) = SPARK.findall(line)
        assert len(spark) == SPARK_SAMPLES
        levels = [SPARK_BARS.index(bar) for bar in spark]
        assert levels[0] == len(SPARK_BARS) - 1 and levels[-1] == 0  # prices fell all day
        assert levels == sorted(levels, reverse=True)
        assert low in line and high in line


def test_region_option_narrows_both_parts(broker_url: str) -> None:
    output = run(broker_url, "spot", "--gpu", "4090", "--region", "quebec")
    assert "Quebec, CA" in output
    assert "beta" not in output


def test_json_is_the_apis_comparison(broker_url: str) -> None:
    body = json.loads(run(broker_url, "spot", "--gpu", "RTX4090", "--json"))
    assert body["gpu"] == "RTX 4090"
    assert [r["provider"] for r in body["rows"]] == ["alpha", "beta", "alpha"]
    assert body["cheapest"]["spot_offer_id"] == "alpha:4090:eu:spot"


def test_no_spot_offer_is_said_plainly(broker_url: str) -> None:
    output = run(broker_url, "spot", "--gpu", "H100")
    assert "$2.50" in output
    assert "on-demand wins: no spot offer now" in output
    assert "no spot price recorded in the last 24 hours" in output


def test_unknown_gpu_is_an_error_with_suggestions(broker_url: str) -> None:
    result = CliRunner().invoke(
        cli, ["spot", "--gpu", "RTX 4909"], env={"GPUBROKER_URL": broker_url, "COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "not_found" in result.output and "RTX 4090" in result.output


def test_on_demand_that_beats_spots_effective_price_is_said_plainly() -> None:
    risky = SpotRow(provider="alpha", region="EU", spot_price="1.00", effective_price="1.60")
    steady = SpotRow(provider="beta", region="US", on_demand_price="1.50", effective_price="1.50")
    said = verdict(SpotComparison(gpu="A100 80GB", rows=[risky, steady]))
    assert said.startswith("on-demand wins: beta, US at $1.50/h")
    cheap_spot = SpotRow(provider="gamma", region="EU", spot_price="0.80", effective_price="0.90")
    said = verdict(SpotComparison(gpu="A100 80GB", rows=[cheap_spot, steady]))
    assert said.startswith("spot wins: gamma, EU at $0.90/h effective")
