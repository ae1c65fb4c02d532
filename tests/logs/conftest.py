"""A broker served by a real uvicorn, logging through the real configuration at DEBUG.

`configure_logging` is what `gpubroker serve` uses; here its handler writes to a buffer the test
reads, every logger (uvicorn's, httpx's, httpcore's and the stripe library's included) is turned
up to DEBUG, and uvicorn is configured as `serve` configures it, so its own handlers are
installed and then adopted by the broker at startup. What the process writes to its standard
streams is scraped too (pytest's `capfd`).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from broker.app import create_app
from broker.logs import configure_logging
from broker.settings import CoreSettings
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.simulators.kit import RunningServer, serve_in_thread
from providers.simulators.stripe import StripeStandin
from tests.brokers import FakeClock, Sim
from tests.proxy.conftest import Broker, sims  # noqa: F401 (a fixture)

WEBHOOK_SECRET = "whsec_logs_" + "w" * 24
STRIPE_API_KEY = "sk_test_logs_standin_key"
LOUD = (
    *("", "httpx", "httpcore", "stripe", "gpubroker"),
    *("uvicorn", "uvicorn.error", "uvicorn.access"),
)


@dataclass
class Captured:
    buffer: io.StringIO

    def lines(self) -> list[str]:
        return [line for line in self.buffer.getvalue().splitlines() if line]


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    saved_levels = {name: logging.getLogger(name).level for name in LOUD}
    saved_uvicorn = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    buffer = io.StringIO()
    configure_logging("json", logging.DEBUG, stream=buffer)
    yield Captured(buffer)
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    for name, (handlers, propagate) in saved_uvicorn.items():
        logging.getLogger(name).handlers = handlers
        logging.getLogger(name).propagate = propagate


class LoudServer(RunningServer):
    """A uvicorn server configured as `serve` configures it, but logging everything."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app)
        config = uvicorn.Config(app, host=self.host, port=0, log_level="debug", access_log=True)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        for name in LOUD:  # uvicorn set its own levels just now; everything at DEBUG
            logging.getLogger(name).setLevel(logging.DEBUG)


@pytest.fixture
def standin() -> Iterator[tuple[StripeStandin, RunningServer]]:
    standin = StripeStandin()
    server = serve_in_thread(standin.app)
    yield standin, server
    server.stop()


@pytest.fixture
def loud_broker(
    monkeypatch: pytest.MonkeyPatch,
    captured: Captured,
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    sims: dict[str, Sim],  # noqa: F811
    standin: tuple[StripeStandin, RunningServer],
) -> Iterator[Broker]:
    adapters = {
        name: PROVIDERS[name].make_adapter(
            ProviderConfig(sim.server.url, PROVIDERS[name].demo_api_key, timeout_seconds=5.0)
        )
        for name, sim in sims.items()
    }
    settings = make_settings(
        database_url=database_url,
        stripe_api_key=STRIPE_API_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=standin[1].url,
    )
    app = create_app(settings, adapters=adapters, start_jobs=False, clock=FakeClock())
    app.state.refresher.refresh_all()
    server = LoudServer(app).start()
    # The simulators start a uvicorn server per workload; theirs must not reconfigure logging.
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda _: None)
    broker = Broker(server, app, sims)
    yield broker
    broker.api.close()
    server.stop()
    time.sleep(0.05)  # the server thread's last lines
    app.state.db.dispose()
