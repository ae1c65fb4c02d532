"""A live broker for the client and CLI tests: served on a loopback socket, renting through the
EmpirioLabs simulator over HTTP, topping up through the Stripe stand-in, with the status job
running in a thread as the scheduler would run it, and one funded account."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from broker.app import create_app
from broker.settings import CoreSettings
from providers.simulators.kit import serve_in_thread
from providers.simulators.stripe import StripeStandin
from tests.brokers import ADMIN, Sim, open_account, sim_adapters, start_sims, stop_sims

SYNC_PAUSE = 0.05


@dataclass
class Live:
    url: str
    api_key: str
    account_id: str
    app: FastAPI
    sims: dict[str, Sim]
    config_home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """What the CLI reads: this broker, this key, a fixed width and a private profile."""
        return {
            "GPUBROKER_URL": self.url,
            "GPUBROKER_API_KEY": self.api_key,
            "COLUMNS": "100",
            "XDG_CONFIG_HOME": str(self.config_home),
            **extra,
        }

    def new_account(self, credit: str = "20.00") -> str:
        with httpx.Client(base_url=self.url, headers=ADMIN) as api:
            key: str = open_account(api, credit)["api_key"]
        return key


@contextmanager
def live_broker(
    make_settings: Callable[..., CoreSettings],
    config_home: Path,
    credit: str = "20.00",
    **settings_overrides: Any,
) -> Iterator[Live]:
    sims = start_sims(only=("empiriolabs",))
    stripe = serve_in_thread(StripeStandin().app)
    settings = make_settings(
        stripe_api_key="sk_test_standin",
        stripe_webhook_secret="whsec_test_" + "s" * 24,
        stripe_api_base=stripe.url,
        **settings_overrides,
    )
    app = create_app(settings, adapters=sim_adapters(sims, timeout_seconds=1.0), start_jobs=False)
    app.state.refresher.refresh_all()
    server = serve_in_thread(app)
    stop = threading.Event()

    def status_job() -> None:
        while not stop.wait(SYNC_PAUSE):
            app.state.status_sync.run()

    thread = threading.Thread(target=status_job, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=server.url) as api:
            made = open_account(api, credit)
        yield Live(server.url, made["api_key"], made["account_id"], app, sims, config_home)
    finally:
        stop.set()
        thread.join()
        server.stop()
        app.state.db.dispose()
        stripe.stop()
        stop_sims(sims)
