"""How the command-line tests reach a broker: served on a loopback thread, driven by Typer.

Both suites start a broker app on a real socket, point `gpubroker` at it through
`GPUBROKER_URL`, and read what the command printed. The terminal width is fixed so that tables
wrap the same on every machine; a suite picks the width its tables were written for.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from typer.testing import CliRunner

from broker.cli import app as cli
from providers.simulators.kit import serve_in_thread


def serve_url(app: FastAPI) -> Iterator[str]:
    """Serve `app` on loopback while the caller (a fixture) holds its URL, then stop it."""
    server = serve_in_thread(app)
    yield server.url
    server.stop()


def run_cli(url: str, *args: str, columns: int) -> str:
    """`gpubroker ARGS` against `url` on a `columns`-wide terminal; it must succeed."""
    result = CliRunner().invoke(
        cli, list(args), env={"GPUBROKER_URL": url, "COLUMNS": str(columns)}
    )
    assert result.exit_code == 0, result.output
    return result.output
