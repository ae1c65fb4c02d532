"""A catalog with RTX 4090 spot offers at two providers, and a day and a half of price history.

Shared by the API, CLI and dashboard tests. The history is written through `PriceHistory.record`, as
the refresh writes it, at times relative to `now`; the refresh that follows records today's
prices, which differ from the last recorded ones only where the catalog says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI

from broker.app import create_app
from broker.settings import CoreSettings
from pricing.history import PriceHistory
from pricing.offer import Offer
from tests.catalog_data import CATALOG, spot_offer

ALPHA_US_SPOT = spot_offer("alpha:4090:us:spot", "alpha", "RTX 4090", 330_000, 0.04)
BETA_EU_SPOT = spot_offer("beta:4090:eu:spot", "beta", "RTX 4090", 300_000, 0.12, region="EU")

SPOT_CATALOG: Mapping[str, list[Offer]] = {
    "alpha": [*CATALOG["alpha"], ALPHA_US_SPOT],
    "beta": [*CATALOG["beta"], BETA_EU_SPOT],
}

# (hours before now, offer id, price in micro-dollars): the spot prices as they moved.
SPOT_HISTORY: list[tuple[int, str, int]] = [
    (30, "alpha:4090:eu:spot", 310_000),
    (30, "alpha:4090:us:spot", 330_000),
    (30, "beta:4090:eu:spot", 340_000),
    (18, "alpha:4090:eu:spot", 295_000),
    (12, "beta:4090:eu:spot", 320_000),
    (6, "alpha:4090:eu:spot", 287_000),
    (3, "beta:4090:eu:spot", 300_000),
]


def _priced(offer_: Offer, price: int) -> Offer:
    return replace(offer_, base_price_per_gpu_hour=price, price_per_gpu_hour=price)


def seed_history(history: PriceHistory, now: datetime) -> None:
    """Record SPOT_HISTORY's points, oldest first, as successive refreshes would."""
    offers = {o.id: o for provider in SPOT_CATALOG.values() for o in provider}
    for hours, offer_id, price in sorted(SPOT_HISTORY, key=lambda row: -row[0]):
        history.record([_priced(offers[offer_id], price)], now - timedelta(hours=hours))


def spot_broker(settings: CoreSettings, providers: Mapping[str, Any], now: datetime) -> FastAPI:
    """A broker app over SPOT_CATALOG with SPOT_HISTORY recorded and one refresh done."""
    for name, offers in SPOT_CATALOG.items():
        providers[name].offers = offers
    app = create_app(settings, adapters=providers, start_jobs=False)
    seed_history(app.state.refresher.history, now)
    app.state.refresher.refresh_all()
    return app
