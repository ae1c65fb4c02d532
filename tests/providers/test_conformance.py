"""What every simulated provider must do alike, run over real HTTP against its simulator.

Each provider in `providers.registry.PROVIDERS` that has a simulator is built from its spec alone
(`spec.make_adapter`, `spec.make_simulator`, `spec.demo_api_key`), so a new backend gets these
checks by being registered. Provider-specific behaviour (parsing, paging, push-down, refusal
mapping, workload rules) stays in that provider's own test files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

import providers.aivory
import providers.fluence
import providers.icgpu
from providers.aivory.adapter import AivoryAdapter
from providers.base import (
    MalformedResponse,
    Provider,
    ProviderError,
    ProviderUnavailable,
)
from providers.fluence.adapter import FluenceAdapter
from providers.icgpu.adapter import IcGpuAdapter
from providers.registry import PROVIDERS
from providers.simulators.kit import RunningServer, SimulatorKnobs
from providers.spec import ProviderSpec
from tests.providers.support import SIMULATED, fast_config, start_simulator

RETRY_ATTEMPTS = 3
MIN_CATALOG_SIZE = 30


@dataclass
class Simulated:
    """One provider's spec, its running simulator and the knobs that make it misbehave."""

    spec: ProviderSpec
    server: RunningServer
    knobs: SimulatorKnobs

    def adapter(self, **overrides: Any) -> Provider:
        settings = {"retry_attempts": RETRY_ATTEMPTS, **overrides}
        config = fast_config(self.server.url, self.spec.demo_api_key, **settings)
        return self.spec.make_adapter(config)

    def assert_key_not_leaked(self, error: ProviderError) -> None:
        assert self.spec.demo_api_key not in str(error)
        assert self.spec.demo_api_key not in error.message


def test_every_provider_but_selfhosted_is_simulated() -> None:
    assert set(SIMULATED) == set(PROVIDERS) - {"selfhosted"}
    assert SIMULATED


@pytest.mark.parametrize(
    ("spec", "base_url", "adapter_type", "api_key"),
    [
        (providers.aivory.SPEC, "https://api.aivory.net", AivoryAdapter, "si_test_key_0123"),
        (providers.fluence.SPEC, "https://api.fluence.dev", FluenceAdapter, "fl_test_key"),
        # IC GPU is reached only where it is deployed: it has no default URL, and no key.
        (providers.icgpu.SPEC, None, IcGpuAdapter, None),
    ],
    ids=lambda value: value.name if isinstance(value, ProviderSpec) else None,
)
def test_the_spec_names_its_url_adapter_and_simulator(
    spec: ProviderSpec, base_url: str | None, adapter_type: type, api_key: str | None
) -> None:
    assert PROVIDERS[spec.name] is spec
    assert spec.default_base_url == base_url
    adapter = spec.make_adapter(fast_config("http://127.0.0.1:9", api_key))
    assert isinstance(adapter, adapter_type)
    adapter.close()
    assert spec.make_simulator is not None
    assert isinstance(spec.make_simulator(SimulatorKnobs()), FastAPI)


@pytest.fixture(scope="module", params=SIMULATED)
def simulated(request: pytest.FixtureRequest) -> Iterator[Simulated]:
    spec = PROVIDERS[request.param]
    knobs = SimulatorKnobs(seed=11)
    server = start_simulator(spec, knobs)
    assert server.app.state.knobs is knobs
    yield Simulated(spec, server, knobs)
    server.stop()


@pytest.fixture
def sim(simulated: Simulated) -> Iterator[Simulated]:
    """The provider's simulator, with its knobs back to well-behaved after each test."""
    knobs = simulated.knobs
    saved = (knobs.price_drift, knobs.hang_seconds, knobs.retry_after_seconds)
    yield simulated
    knobs.forced.clear()
    knobs.price_drift, knobs.hang_seconds, knobs.retry_after_seconds = saved


@pytest.fixture
def adapter(sim: Simulated) -> Iterator[Provider]:
    made = sim.adapter()
    yield made
    made.close()


def offer_ids(adapter: Provider) -> list[str]:
    return sorted(offer.id for offer in adapter.list_offers().offers)


def test_the_catalog_is_large_whole_and_its_own(adapter: Provider, sim: Simulated) -> None:
    page = adapter.list_offers()

    assert page.skipped == []
    assert len(page.offers) >= MIN_CATALOG_SIZE
    assert len({offer.id for offer in page.offers}) == len(page.offers)
    assert {offer.provider for offer in page.offers} == {sim.spec.name}
    assert any(not offer.available for offer in page.offers)


@pytest.mark.parametrize("fault", ["429", "5xx"])
def test_transient_faults_are_retried_until_the_catalog_is_read(
    adapter: Provider, sim: Simulated, fault: Any
) -> None:
    clean = offer_ids(adapter)
    # A Retry-After longer than the adapter's wait cap: the cap wins and the retry still happens.
    sim.knobs.retry_after_seconds = 1.0
    sim.knobs.fail_next(RETRY_ATTEMPTS - 1, fault)

    retried = offer_ids(adapter)

    assert not sim.knobs.forced
    assert retried == clean
    assert len(retried) >= MIN_CATALOG_SIZE


def test_faults_outlasting_the_retries_make_the_provider_unavailable(
    adapter: Provider, sim: Simulated
) -> None:
    sim.knobs.fail_next(RETRY_ATTEMPTS, "5xx")

    with pytest.raises(ProviderUnavailable) as raised:
        adapter.list_offers()

    assert not sim.knobs.forced
    sim.assert_key_not_leaked(raised.value)


def test_a_garbage_body_is_a_malformed_response(adapter: Provider, sim: Simulated) -> None:
    sim.knobs.fail_next(1, "garbage")

    with pytest.raises(MalformedResponse) as raised:
        adapter.list_offers()

    assert not sim.knobs.forced
    sim.assert_key_not_leaked(raised.value)


def test_a_hang_past_the_timeout_makes_the_provider_unavailable(sim: Simulated) -> None:
    sim.knobs.hang_seconds = 2.0
    sim.knobs.fail_next(2, "timeout")
    impatient = sim.adapter(timeout_seconds=0.3, retry_attempts=2)
    try:
        with pytest.raises(ProviderUnavailable) as raised:
            impatient.list_offers()
    finally:
        impatient.close()

    assert not sim.knobs.forced
    assert "timed out" in raised.value.message
    sim.assert_key_not_leaked(raised.value)


def test_a_drifted_refresh_keeps_ids_and_moves_prices(adapter: Provider, sim: Simulated) -> None:
    sim.knobs.price_drift = 0.1

    first = {offer.id: offer.base_price_per_gpu_hour for offer in adapter.list_offers().offers}
    second = {offer.id: offer.base_price_per_gpu_hour for offer in adapter.list_offers().offers}

    assert second.keys() == first.keys()
    assert len(second) >= MIN_CATALOG_SIZE
    moved = [offer_id for offer_id in second if second[offer_id] != first[offer_id]]
    assert len(moved) > len(second) // 2
