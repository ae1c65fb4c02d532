"""Fixtures shared by every test: settings, static providers, and a database on both backends.

Every test that takes `database_url` runs twice, `[sqlite]` on a temporary file and
`[postgresql]` in a uniquely named schema on the server at `GPUBROKER_TEST_POSTGRES_URL`
(dropped afterwards), built by the migrations (run once per session: see tests/databases.py).
An unreachable PostgreSQL fails the test; it never skips.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx._transports.default as httpx_transports
import pytest
from sqlalchemy.exc import OperationalError

from broker import invalidation
from broker.db import Database, scratch_schema
from broker.settings import CoreSettings, Settings
from pricing.offer import Offer
from providers.base import OfferFilters, OfferPage, ProviderUnavailable
from tests.brokers import BrokerHost, Sim
from tests.databases import RecordedMigrations, copy_sqlite, migrated_sqlite_file

POSTGRES_URL = os.environ.get(
    "GPUBROKER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session", autouse=True)
def shared_ssl_context() -> Iterator[None]:
    """One default TLS context for every HTTP client of the test process: httpx loads the whole
    CA bundle again for each client it makes (tens of milliseconds), and the tests make a great
    many. Clients given their own `verify` or `cert` still get a context of their own."""
    make_context = httpx_transports.create_ssl_context
    shared = make_context()

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        default = verify is True and cert is None and trust_env
        return shared if default else make_context(verify, cert, trust_env)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx_transports, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture(scope="session", autouse=True)
def prompt_listener_stop() -> Iterator[None]:
    """A broker on PostgreSQL stops its invalidation listener within 50 ms, not half a second:
    every test's broker is stopped at its end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(invalidation, "STOP_CHECK_SECONDS", 0.05)
        yield


def scratch_postgres(stack: ExitStack, prefix: str) -> str:
    """A new, empty PostgreSQL schema, dropped as `stack` closes; unreachable, the test fails."""
    try:
        return stack.enter_context(scratch_schema(POSTGRES_URL, prefix))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file the migrations built; each test's SQLite database is a copy of it."""
    return migrated_sqlite_file(tmp_path_factory.mktemp("migrated") / "broker.db")


@pytest.fixture(scope="session")
def postgres_migrations() -> RecordedMigrations:
    """What the migrations send to an empty PostgreSQL schema, replayed in each test's schema."""
    with ExitStack() as stack:
        return RecordedMigrations.of(scratch_postgres(stack, "test_gpubroker_template"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database; the URL alone selects it (PostgreSQL: via search_path)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = copy_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "broker.db")
        else:
            url = scratch_postgres(stack, "test_gpubroker")
            request.getfixturevalue("postgres_migrations").replay(url)
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


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
def broker_host(
    make_settings: Callable[..., CoreSettings], database_url: str, sims: dict[str, Sim]
) -> Iterator[BrokerHost]:
    """Brokers served over loopback for this test, next to the `sims` its folder provides."""
    host = BrokerHost(make_settings, database_url, sims)
    yield host
    host.close()


@pytest.fixture
def static_providers() -> Iterator[dict[str, StaticProvider]]:
    yield {name: StaticProvider(name) for name in ("alpha", "beta")}
