"""Fixtures for the tests of one provider against its simulator, named by a `provider` mark.

A test module says which backend it exercises with
`pytestmark = pytest.mark.provider("aivory", api_key=API_KEY)`; every test in it then gets that
provider's simulator fresh from the seed (`provider`), its knobs and state (`knobs`, `sim`) and an
adapter holding the key (`adapter`), all built through the registry as the conformance suite
builds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider, simulated


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "provider(name, api_key=..., **knobs): the simulated provider a test module talks to",
    )


@pytest.fixture
def provider(request: pytest.FixtureRequest) -> Iterator[SimulatedProvider]:
    """The marked provider's simulator, started from the seed for this test alone."""
    mark = request.node.get_closest_marker("provider")
    assert mark is not None, "the test module names its provider with a provider mark"
    with simulated(*mark.args, **mark.kwargs) as running:
        yield running


@pytest.fixture
def knobs(provider: SimulatedProvider) -> SimulatorKnobs:
    return provider.knobs


@pytest.fixture
def sim(provider: SimulatedProvider) -> Any:
    return provider.sim


@pytest.fixture
def adapter(provider: SimulatedProvider) -> Iterator[Any]:
    made = provider.adapter()
    yield made
    made.close()
