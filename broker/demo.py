"""`gpubroker serve --demo`: the whole broker on one laptop, with no configuration and no network.

Every provider in the registry that has a simulator gets one, on a free loopback port, with
prices that drift between refreshes; the adapters point at them. When a Docker engine answers,
`selfhosted` is enabled too, with two simulated RTX 4090s (or the devices declared in
`GPUBROKER_SELFHOSTED_FAKE_GPUS`) whose rentals run as real containers. A local Stripe stand-in
takes the top-ups. The database is SQLite (migrated on start), a week of price history is drawn
behind the first refresh (broker.demo_history), and a demo account with credit is created and its
key printed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping

from fastapi import FastAPI

from broker import accounts, credentials, ledger
from broker.app import create_app
from broker.demo_history import seed_history
from broker.settings import Settings
from pricing.money import to_micros
from providers import selfhosted
from providers.registry import PROVIDERS
from providers.selfhosted.engine import engine_reachable
from providers.simulators.kit import RunningServer, SimulatorKnobs, serve_in_thread
from providers.simulators.stripe import StripeStandin
from providers.simulators.stripe_checkout import add_checkout

DEMO_DATABASE_URL = "sqlite:///./gpubroker-demo.db"
DEMO_CREDIT_USD = "100.00"
DEMO_WEBHOOK_SECRET = "whsec_demo"
DEMO_FAKE_GPUS = "2xRTX 4090"


def start_simulators(
    price_drift: float = 0.01,
    *,
    provision_seconds: float = 1.0,
    accept_delay_seconds: float = 0.0,
) -> dict[str, RunningServer]:
    """One simulator per provider that has one, each on a free loopback port.

    `provision_seconds` is how long an instance takes to run; `accept_delay_seconds` holds each
    provision's answer back after the instance exists (a window in which a broker can die).
    """
    servers: dict[str, RunningServer] = {}
    for seed, (name, spec) in enumerate(PROVIDERS.items(), start=1):
        if spec.make_simulator is not None:
            knobs = SimulatorKnobs(
                price_drift=price_drift,
                seed=seed,
                provision_seconds=provision_seconds,
                accept_delay_seconds=accept_delay_seconds,
            )
            servers[name] = serve_in_thread(spec.make_simulator(knobs))
    return servers


def simulator_environment(urls: Mapping[str, str]) -> dict[str, str]:
    """The `GPUBROKER_*` variables that point a broker at simulators (provider name -> URL)."""
    env = {"GPUBROKER_PROVIDERS": ",".join(urls)}
    for name, url in urls.items():
        env[f"GPUBROKER_{name.upper()}_BASE_URL"] = url
        env[f"GPUBROKER_{name.upper()}_API_KEY"] = PROVIDERS[name].demo_api_key
    return env


def demo_app(host: str, port: int, announce: Callable[[str], None] = print) -> FastAPI:
    """The broker wired to local simulators, with a funded demo account."""
    simulators = start_simulators()
    standin = StripeStandin()
    stripe = serve_in_thread(standin.app)
    overrides: dict[str, object] = {"providers": ",".join(simulators)}
    for name, server in simulators.items():
        overrides[f"{name}_base_url"] = server.url
        overrides[f"{name}_api_key"] = PROVIDERS[name].demo_api_key
    docker_url = (
        os.environ.get("GPUBROKER_SELFHOSTED_BASE_URL")
        or selfhosted.SPEC.default_base_url
        or selfhosted.LOCAL_DOCKER_SOCKET
    )
    fake_gpus = os.environ.get("GPUBROKER_SELFHOSTED_FAKE_GPUS") or DEMO_FAKE_GPUS
    with_docker = engine_reachable(docker_url)
    if with_docker:
        overrides["providers"] = ",".join([*simulators, selfhosted.PROVIDER])
        overrides["selfhosted_fake_gpus"] = fake_gpus
    configured_admin_key = os.environ.get("GPUBROKER_ADMIN_KEY")
    admin_key = configured_admin_key or "adm_" + secrets.token_urlsafe(24)
    settings = Settings(
        database_url=os.environ.get("GPUBROKER_DATABASE_URL", DEMO_DATABASE_URL),
        admin_key=admin_key,
        stripe_api_key="sk_test_demo",
        stripe_webhook_secret=DEMO_WEBHOOK_SECRET,
        stripe_api_base=stripe.url,
        stripe_checkout_url=f"{stripe.url}/checkout/{{payment_intent_id}}",
        secret_key=os.environ.get("GPUBROKER_SECRET_KEY") or credentials.generate_key(),
        webhook_allow_private=True,  # the demo's receivers are on this machine
        **overrides,
    )
    app = create_app(settings)
    # The first refresh now, so a week of history can be drawn up to it before anyone looks.
    app.state.refresher.refresh_all(timeout_seconds=30)
    seed_history(app.state.db, app.state.catalog.index.offers, seed=len(simulators))
    with app.state.db.session() as session:
        account, key = accounts.create_account(session, "demo")
        ledger.grant(session, account.id, to_micros(DEMO_CREDIT_USD), "demo credit")
    base = f"http://{host}:{port}"
    # The stand-in's pay page delivers the payment's event to this broker, as Stripe would.
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    add_checkout(standin, f"http://{local}:{port}/v1/stripe/webhook", DEMO_WEBHOOK_SECRET)
    announce(f"gpubroker demo on {base} with {len(simulators)} simulated providers")
    for name, server in simulators.items():
        announce(f"  {name:<12} simulator at {server.url}")
    if with_docker:
        announce(f"  selfhosted   {fake_gpus} (simulated) on the Docker engine at {docker_url}")
    else:
        announce(f"  selfhosted   off: no Docker engine answers at {docker_url}")
    announce(f"  stripe       stand-in at {stripe.url}")
    announce(f"demo account {account.id} with ${DEMO_CREDIT_USD} credit")
    announce(f"  export GPUBROKER_URL={base} GPUBROKER_API_KEY={key.secret}")
    if not configured_admin_key:
        announce(f"operator key (generated for this run): {admin_key}")
    announce(f"try: gpubroker offers --gpu 'RTX 4090' --max-price 0.60   or   curl {base}/v1/gpus")
    return app
