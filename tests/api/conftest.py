"""The broker's API over the static catalog, on both databases, for the suites that ask it things.

`catalog_app` is the app with every static provider holding its share of `tests.catalog_data`,
refreshed once, and no background jobs; each suite opens its own client on it, as it needs
(with or without the server's exceptions raised into the test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI

from broker.settings import CoreSettings
from tests.catalog_data import catalog_broker
from tests.conftest import StaticProvider


@pytest.fixture
def catalog_app(
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    static_providers: dict[str, StaticProvider],
) -> Iterator[FastAPI]:
    app = catalog_broker(make_settings(database_url=database_url), static_providers)
    yield app
    app.state.db.dispose()
