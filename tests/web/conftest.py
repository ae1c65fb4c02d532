"""The dashboard under test: a broker on a real loopback server, and Debian's Chromium.

Chromium is driven by Playwright with `executable_path`, so no browser is downloaded. A missing
/usr/bin/chromium fails the tests (install it with `apt-get install chromium`; .ci/run does):
the dashboard is never reported as tested when it was not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Request, sync_playwright

from broker.app import create_app
from broker.settings import CoreSettings
from providers.simulators.kit import serve_in_thread
from providers.simulators.stripe import StripeStandin
from providers.simulators.stripe_checkout import add_checkout
from tests.brokers import open_account, sim_adapters, start_sims, stop_sims
from tests.web.spot_catalog import spot_broker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_KEY = "test-admin-key"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Broker:
    url: str
    app: FastAPI
    api_key: str
    providers: dict[str, Any]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def broker(
    make_settings: Callable[..., CoreSettings], static_providers: dict[str, Any]
) -> Iterator[Broker]:
    """The spot catalog with a day and a half of history, and an account holding 12.50 USD."""
    app = spot_broker(make_settings(admin_key=ADMIN_KEY), static_providers, datetime.now(UTC))
    server = serve_in_thread(app)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=admin) as client:
        account = client.post("/v1/admin/accounts", json={"name": "dashboard"}).json()
        granted = client.post(
            f"/v1/admin/accounts/{account['account_id']}/credits",
            json={"amount": "12.50", "reason": "test"},
        )
        assert granted.status_code == 201, granted.text
    yield Broker(server.url, app, account["api_key"], static_providers)
    server.stop()


@pytest.fixture
def live(make_settings: Callable[..., CoreSettings]) -> Iterator[Broker]:
    """A broker renting through every provider simulator, with the Stripe stand-in and its pay
    page for top-ups, and an account holding 50 USD. No background jobs: tests run the status
    sync themselves."""
    sims = start_sims()
    standin = StripeStandin()
    stripe = serve_in_thread(standin.app)
    settings = make_settings(
        providers=",".join(sims),
        stripe_api_key="sk_test_web",
        stripe_webhook_secret="whsec_web",
        stripe_api_base=stripe.url,
        stripe_checkout_url=f"{stripe.url}/checkout/{{payment_intent_id}}",
    )
    app = create_app(settings, adapters=sim_adapters(sims, 2.0), start_jobs=False)
    app.state.refresher.refresh_all()
    server = serve_in_thread(app)
    add_checkout(standin, f"{server.url}/v1/stripe/webhook", "whsec_web")
    with httpx.Client(base_url=server.url) as client:
        account = open_account(client, "50.00")
    try:
        yield Broker(server.url, app, account["api_key"], {"stripe": standin})
    finally:
        server.stop()
        stripe.stop()
        stop_sims(sims)


@dataclass
class Tab:
    page: Page
    requests: list[Request]
    errors: list[str]


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh browser context (its own sessionStorage) recording requests and script errors."""
    context = browser.new_context(viewport={"width": 1300, "height": 1700})
    page = context.new_page()
    page.set_default_timeout(15_000)
    opened = Tab(page, [], [])
    page.on("request", lambda request: opened.requests.append(request))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    context.close()
    assert opened.errors == []
