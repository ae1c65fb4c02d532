"""Fixtures shared by every test: settings on a temporary SQLite file, static providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.settings import CoreSettings, Settings
from pricing.offer import Offer
from providers.base import OfferFilters, OfferPage, ProviderUnavailable


class StaticProvider:
    """A provider whose catalog is whatever the test puts in `offers`, or a failure."""

    def __init__(self, name: str, offers: list[Offer] | None = None) -> None:
        self.name = name
        self.offers = offers or []
        self.failure: str | None = None
        self.closed = False

    def list_offers(self, filters: OfferFilters | None = None) -> OfferPage:
        if self.failure:
            raise ProviderUnavailable(self.name, self.failure)
        return OfferPage(offers=[_copy(o) for o in self.offers])

    def close(self) -> None:
        self.closed = True


def _copy(offer: Offer) -> Offer:
    from dataclasses import replace

    return replace(offer, ref=dict(offer.ref))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., CoreSettings]:
    """Settings on a fresh SQLite file, ignoring the developer's environment and .env."""

    def build(**overrides: Any) -> CoreSettings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'broker.db'}",
            "admin_key": "test-admin-key",
            "refresh_jitter_seconds": 0,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def static_providers() -> Iterator[dict[str, StaticProvider]]:
    yield {name: StaticProvider(name) for name in ("alpha", "beta")}
