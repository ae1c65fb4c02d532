"""The broker's FastAPI application: wiring settings, database, catalog and routes together.

`create_app` builds every service up front (so tests can reach them on `app.state`) and the
lifespan only starts and stops the background jobs and the connect proxy's shared HTTP client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import cast

from fastapi import FastAPI

from broker import credentials, migrations
from broker.api import admin, offers, rentals, spot, stripe_webhook, wallet
from broker.api import budget as budget_routes
from broker.api import keys as account_keys
from broker.api import webhooks as webhook_routes
from broker.api.errors import install_error_handlers
from broker.api.openapi import HEALTH_RESPONSES, Health, install_openapi
from broker.api.params import reject_nul_in_urls
from broker.api.render import json_response
from broker.connect_lookup import BrokerLookup, forward_invalidations
from broker.db import Database
from broker.health import health_report
from broker.invalidation import InvalidationBus
from broker.jobs import Jobs
from broker.logs import install_request_ids
from broker.metrics import install_metrics
from broker.ownership import resolve_deployment
from broker.rentals import observed, reconcile
from broker.rentals.limits import Activity
from broker.rentals.meter import Meter
from broker.rentals.reconcile import Reconciler
from broker.rentals.service import RentalService
from broker.rentals.sync import StatusSync
from broker.settings import CoreSettings, get_settings, provider_config
from broker.web import install_dashboard
from broker.webhooks.delivery import Deliverer
from broker.webhooks.endpoints import Webhooks
from pricing.catalog import Catalog
from pricing.gpus import normalize_gpu_key
from pricing.history import PriceHistory, schedule_pruning
from pricing.policy import PricingPolicy
from pricing.refresh import Refresher
from providers.base import Provider
from providers.registry import PROVIDERS
from providers.rental import RentalProvider
from proxy import routes as connect
from proxy.errors import ProxyError, proxy_error_handler
from proxy.forward import upstream_client
from proxy.settings import ProxySettings

log = logging.getLogger("gpubroker")


def build_adapters(
    settings: CoreSettings, deployment_id: str | None = None
) -> dict[str, Provider]:
    """An adapter for every enabled provider that has a base URL; the others are logged.
    Each tags what it starts with `deployment_id` where its provider takes a tag."""
    adapters: dict[str, Provider] = {}
    for name in settings.providers:
        config = provider_config(settings, name, deployment_id)
        if config is None:
            log.warning(
                "provider %s is enabled but has no GPUBROKER_%s_BASE_URL", name, name.upper()
            )
            continue
        adapters[name] = PROVIDERS[name].make_adapter(config)
    return adapters


def create_app(
    settings: CoreSettings | None = None,
    *,
    adapters: Mapping[str, Provider] | None = None,
    start_jobs: bool = True,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    proxy_settings: ProxySettings | None = None,
) -> FastAPI:
    """The application, with its services on `app.state`; jobs start with the lifespan."""
    settings = settings or get_settings()
    proxy_settings = proxy_settings or ProxySettings()
    db = Database(settings.database_url)
    if db.engine.dialect.name == "sqlite":
        migrations.upgrade(db.engine)
    deployment = resolve_deployment(db, settings.deployment_id)
    sealer = credentials.Sealer.from_setting(settings.secret_key)
    credentials.attach(db, sealer)
    adapters = dict(adapters) if adapters is not None else build_adapters(settings, deployment)
    credentials.warn_without_key(sealer, adapters)
    catalog = Catalog(
        adapters,
        PricingPolicy(settings.margin, settings.interruption_loss_hours),
        stale_after_seconds=settings.stale_after,
        gpu_key=normalize_gpu_key,
    )
    refresher = Refresher(
        catalog,
        adapters,
        PriceHistory(db),
        interval_seconds=settings.refresh_seconds,
        jitter_seconds=settings.refresh_jitter_seconds,
    )

    jobs = Jobs(db)
    renters = cast(Mapping[str, RentalProvider], adapters)
    rentals_service = RentalService(
        db, catalog, renters, clock, min_hold_seconds=settings.min_hold_seconds
    )
    status_sync = StatusSync(
        db,
        catalog,
        renters,
        clock,
        min_hold_seconds=settings.min_hold_seconds,
        action_timeout_seconds=settings.action_timeout_seconds,
    )
    activity = Activity(db, clock)
    meter = Meter(
        db,
        renters,
        clock,
        meter_seconds=settings.meter_seconds,
        min_hold_seconds=settings.min_hold_seconds,
        activity=activity,
        busy_percent=settings.idle_gpu_busy_percent,
    )
    reconciler = Reconciler(
        db,
        renters,
        clock,
        grace_seconds=settings.provision_grace_seconds,
        deployment=deployment,
        exclusive=settings.exclusive_providers,
    )
    jobs.add("rental-status", status_sync.run, settings.status_seconds)
    jobs.add("meter", meter.run, settings.meter_seconds)
    jobs.add("proxy-activity", activity.flush, settings.meter_seconds / 3)
    jobs.add("reconcile", reconciler.run, settings.reconcile_seconds)
    with db.session(read_only=True) as session:
        observed.refresh_catalog(session, catalog)
    schedule_pruning(jobs, db, settings.price_history_retention_days)
    deliverer = Deliverer(
        db,
        sealer,
        retry_seconds=settings.webhook_retry_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
        poll_seconds=settings.webhook_poll_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        invalidations.start()
        if start_jobs:
            refresher.start()
            jobs.start()
            deliverer.start()
        try:
            async with upstream_client(proxy_settings) as client:
                app.state.proxy_client = client
                yield
        finally:
            deliverer.close()
            jobs.stop()
            refresher.stop()
            invalidations.stop()
            db.engine.dispose()

    # /docs and /redoc are served by install_openapi, with their files from the broker, no CDN.
    # The broker's metrics are Prometheus's (/metrics); FastAPI's own OpenTelemetry hooks would
    # only look for providers that are never configured, on every request.
    app = FastAPI(
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,
        redoc_url=None,
        title="gpubroker",
        version="0.1.0",
        summary="One catalog, one rental API and one prepaid wallet over many GPU clouds.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.catalog = catalog
    app.state.refresher = refresher
    app.state.jobs = jobs
    app.state.webhooks = Webhooks(db, sealer, allow_private=settings.webhook_allow_private)
    app.state.deliverer = deliverer
    app.state.rentals = rentals_service
    app.state.status_sync = status_sync
    app.state.meter = meter
    app.state.activity = activity
    app.state.reconciler = reconciler
    app.state.deployment = deployment
    app.state.proxy = connect.Connector(BrokerLookup(db, renters, activity), proxy_settings)
    invalidations = app.state.invalidations = InvalidationBus(db)
    forward_invalidations(invalidations, app.state.proxy.gatekeeper)
    install_error_handlers(app)
    install_openapi(app)
    reject_nul_in_urls(app)
    app.add_exception_handler(ProxyError, proxy_error_handler)
    connect.install_fast_path(app)  # before request ids, which then wrap it too
    install_request_ids(app, settings)
    # The connect proxy first: its route is the hottest, and matching stops at the first hit.
    for module in (
        connect,
        offers,
        spot,
        rentals,
        wallet,
        admin,
        stripe_webhook,
        account_keys,
        webhook_routes,
        budget_routes,
    ):
        app.include_router(module.router)
    install_dashboard(app)

    install_metrics(app, catalog, db, jobs.history).register(reconcile.FINDINGS)

    @app.get("/healthz", tags=["operator"], response_model=Health, responses=HEALTH_RESPONSES)
    async def healthz() -> object:
        status, body = await health_report(app.state)
        return json_response(body, status_code=status)

    return app
