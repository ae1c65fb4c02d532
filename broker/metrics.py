"""`GET /metrics`: the broker's state for Prometheus.

Catalog figures are read at scrape time from the catalog itself (a custom collector), so they
cannot drift from what the API shows; one registry per app keeps test apps independent.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pricing.catalog import Catalog, ProviderHealth


class CatalogCollector(Collector):
    """Offers, health and freshness of each provider's part of the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        offers = GaugeMetricFamily(
            "gpubroker_offers", "Offers in the catalog per provider", labels=["provider"]
        )
        healthy = GaugeMetricFamily(
            "gpubroker_provider_up",
            "1 when the provider's last refresh succeeded and is recent",
            labels=["provider"],
        )
        updated = GaugeMetricFamily(
            "gpubroker_provider_updated_timestamp_seconds",
            "Time of the provider's last successful refresh",
            labels=["provider"],
        )
        for name, status in self.catalog.status().items():
            offers.add_metric([name], float(status["offers"]))  # type: ignore[arg-type]
            healthy.add_metric([name], 1.0 if status["status"] == ProviderHealth.OK else 0.0)
            stamp = status["updated_at"]
            if stamp is not None:
                updated.add_metric([name], stamp.timestamp())  # type: ignore[attr-defined]
        yield offers
        yield healthy
        yield updated


def install_metrics(app: FastAPI, catalog: Catalog) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(CatalogCollector(catalog))

    @app.get("/metrics", tags=["operator"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
