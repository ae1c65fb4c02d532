"""How `gpubroker` prints: data as plain text, never cut, slices marked, pages counted, errors
one line on stderr with exit 1 (API) or 2 (usage), never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from broker.app import create_app
from broker.cli import app as cli
from broker.cli_output import Column, fitted
from broker.settings import CoreSettings
from pricing.offer import Tier
from tests.catalog_data import offer
from tests.cli.live import Live
from tests.cli.support import serve_url

EMOJI_ID = "alpha:cloud:rtx-4090:1x:spot"
SLICE_ID = "alpha:mig:h100:1g"


@pytest.fixture
def catalog_url(
    make_settings: Callable[..., CoreSettings], static_providers: dict[str, Any]
) -> Iterator[str]:
    static_providers["alpha"].offers = [
        offer(EMOJI_ID, "alpha", "RTX 4090", 190_000, tier=Tier.SPOT, interruption_probability=0.1),
        offer(SLICE_ID, "alpha", "H100 SXM", 333_000, slice="mig-1g.10gb", gpu_fraction=0.125),
        *(offer(f"alpha:a100:{n}", "alpha", "A100 80GB", 1_000_000 + n) for n in range(30)),
    ]
    static_providers["beta"].offers = [
        offer("beta:listing:7", "beta", "RTX 4090", 210_000, models=("llama3", "qwen2.5")),
    ]
    app = create_app(make_settings(), adapters=static_providers, start_jobs=False)
    app.state.refresher.refresh_all()
    yield from serve_url(app)


def invoke(url: str, *args: str, columns: int = 80) -> Any:
    env = {"GPUBROKER_URL": url, "COLUMNS": str(columns), "XDG_CONFIG_HOME": "/nonexistent"}
    return CliRunner().invoke(cli, list(args), env=env)


def test_ids_are_printed_as_they_are_and_never_cut(catalog_url: str) -> None:
    result = invoke(catalog_url, "offers", "--gpu", "4090", "--wide")
    assert result.exit_code == 0, result.output
    assert EMOJI_ID in result.stdout and "$0.19/h" in result.stdout
    narrow = invoke(catalog_url, "offers", "--gpu", "4090", columns=60)
    assert narrow.exit_code == 0
    lines = narrow.stdout.splitlines()
    ids = [line.split()[0] for line in lines if line.startswith(("alpha", "beta"))]
    assert ids == [EMOJI_ID, "beta:listing:7"]  # whole, each on a line of its own
    assert "$0.19/h" in narrow.stdout and "$0.21/h" in narrow.stdout  # prices whole too


def test_a_table_narrows_its_wordy_columns_before_it_gives_up() -> None:
    columns = [Column("ID", whole=True), Column("NAME"), Column("PRICE", numeric=True)]
    rows = [["id-123456", "a long name here", "$1.00/h"]]
    assert fitted(columns, rows, 60) == [9, 16, 7]
    assert fitted(columns, rows, 30) == [9, 10, 7]  # NAME wraps between words
    assert fitted(columns, rows, 20) is None  # printed as one block per row instead


def test_slices_are_marked_and_models_shown(catalog_url: str) -> None:
    whole = invoke(catalog_url, "offers", "--gpu", "H100", "--wide").stdout
    assert SLICE_ID not in whole
    sliced = invoke(catalog_url, "offers", "--gpu", "H100", "--slices", "--wide").stdout
    (line,) = [ln for ln in sliced.splitlines() if ln.startswith(SLICE_ID)]
    assert "SLICE mig-1g.10gb" in line and "0.125 of a card" in line
    assert "part of a card" in sliced
    models = invoke(catalog_url, "offers", "--gpu", "4090", "--wide").stdout
    assert "MODELS" in models and "llama3, qwen2.5" in models


def test_a_long_list_says_how_much_is_left(catalog_url: str) -> None:
    shown = invoke(catalog_url, "offers", "--gpu", "A100", "--limit", "5", "--wide").stdout
    assert "showing 5 of 30 (use --limit or --all)" in shown
    everything = invoke(catalog_url, "offers", "--gpu", "A100", "--all", "-o", "csv").stdout
    assert len(everything.splitlines()) == 31 and everything.startswith("ID,GPU,")


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["offers", "--gpu", "foo[/]"], 1, ["invalid_request", "foo[/]"]),
        (["offers", "--tier", "cheap"], 1, ["invalid_request", "tier", "gpubroker offers --help"]),
        (["offers", "--limit", "x"], 2, ["usage error", "--limit"]),
        (["offers", "--bogus"], 2, ["usage error", "--bogus"]),
        (["rent", "--env", "NOEQUALS", "--yes"], 2, ["usage error", "NAME=value"]),
        (["rent", "--max-duration", "soon", "--yes"], 2, ["usage error", "30m"]),
        (["rent", "--max-cost", "-3", "--yes"], 2, ["usage error", "--max-cost"]),
        (["topup", "lots"], 2, ["usage error", "AMOUNT"]),
        (["rentals"], 1, ["unauthorized", "gpubroker login"]),
        (["status", "rnt_nope"], 1, ["unauthorized"]),
    ],
)
def test_mistakes_are_one_line_on_stderr(
    catalog_url: str, args: list[str], code: int, words: list[str]
) -> None:
    result = invoke(catalog_url, *args)
    assert result.exit_code == code, result.output
    (line,) = result.stderr.splitlines()
    assert all(word in line for word in words), line
    assert "Traceback" not in result.output and result.stdout == ""


def test_errors_are_json_under_json(catalog_url: str) -> None:
    result = invoke(catalog_url, "offers", "--gpu", "RTX 4909", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "invalid_request" and error["param"] == "gpu" and error["status"] == 422
    usage = invoke(catalog_url, "offers", "--limit", "x", "--json")
    assert usage.exit_code == 2 and json.loads(usage.stderr)["error"]["code"] == "usage"


@pytest.mark.parametrize(
    ("url", "code"), [("http://[::1", "bad_url"), ("http://127.0.0.1:9", "unreachable")]
)
def test_bad_or_unreachable_url_is_one_line(url: str, code: str) -> None:
    result = CliRunner().invoke(cli, ["--url", url, "gpus"], env={"XDG_CONFIG_HOME": "/x"})
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert code in line and "--url" in line


def test_a_server_answering_html_is_one_line(live: Live) -> None:
    result = CliRunner().invoke(cli, ["--url", live.url + "/docs", "gpus"], env=live.env())
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "bad_response" in line or "not_found" in line


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("gpubroker ")
