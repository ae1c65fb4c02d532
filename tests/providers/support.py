"""What the provider tests share: test-sized adapter settings, and a provider's simulator running.

Every simulated backend is reached the same way, through its registry entry: the spec builds the
simulator from a set of knobs, the simulator serves over real HTTP on a thread, and the spec's own
`make_adapter` talks to it. `SimulatedProvider` holds one such running pair and the few things a
rental test asks of it: a fresh adapter (with any key, or none), the simulator's state object, its
`/_sim` inspection and interruption routes, and a bounded wait for an instance to reach a status.
The rental conformance suite and each provider's own rental tests both build on it, so neither
starts a server or polls in its own way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest

from pricing.offer import Offer
from providers.base import OfferPage, ProviderConfig, ProviderRefused
from providers.registry import PROVIDERS
from providers.rental import (
    Instance,
    InstanceStatus,
    Scope,
    UnsupportedWorkload,
    Workload,
    scope_of,
)
from providers.simulators.kit import RunningServer, SimulatorKnobs, serve_in_thread
from providers.spec import ProviderSpec

POLL_ATTEMPTS = 200
POLL_PAUSE = 0.02
# Rentals in the simulators take this long to come up unless a test says otherwise.
PROVISION_SECONDS = 0.2
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIMULATED = [name for name, spec in PROVIDERS.items() if spec.make_simulator is not None]


class Key(Enum):
    """The key a simulated provider's adapters hold unless told otherwise."""

    DEMO = "the spec's demo key"


def fast_config(base_url: str, api_key: str | None, /, **overrides: Any) -> ProviderConfig:
    """A provider configuration whose retries wait a few milliseconds, so fault tests stay quick.

    `overrides` may replace any field, the key included (positional-only parameters allow it).
    """
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": api_key,
        "timeout_seconds": 5.0,
        "retry_attempts": 3,
        "retry_max_wait_seconds": 0.05,
    }
    settings.update(overrides)
    return ProviderConfig(**settings)


def start_simulator(spec: ProviderSpec, knobs: SimulatorKnobs) -> RunningServer:
    """`spec`'s simulator, built from `knobs` and serving over HTTP on a thread."""
    assert spec.make_simulator is not None, f"{spec.name} has no simulator"
    return serve_in_thread(spec.make_simulator(knobs))


@dataclass
class SimulatedProvider:
    """One provider's spec, its running simulator, the knobs it reads and the key it accepts."""

    spec: ProviderSpec
    server: RunningServer
    knobs: SimulatorKnobs
    api_key: str | None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def sim(self) -> Any:
        """The simulator's state object: its account book, seeded capacity and request counts."""
        return self.server.app.state.sim

    def adapter(self, **overrides: Any) -> Any:
        """A new adapter for this simulator; `api_key=None` makes one without a key."""
        key = overrides.pop("api_key", self.api_key)
        return self.spec.make_adapter(fast_config(self.url, key, **overrides))

    def instances(self) -> list[dict[str, Any]]:
        """Every rental the simulator has made, ended ones included, in its own words."""
        return httpx.get(f"{self.url}/_sim/instances").json()["instances"]

    def interrupt(self, handle: str) -> httpx.Response:
        """Ask the simulator to take back the instance behind `handle` (a spot interruption)."""
        instance_id = handle.rpartition(":")[2]
        return httpx.post(f"{self.url}/_sim/instances/{instance_id}/interrupt")


@contextmanager
def simulated(
    name: str, api_key: str | Key | None = Key.DEMO, **knobs: Any
) -> Iterator[SimulatedProvider]:
    """Provider `name`'s simulator from a fresh seed, stopped afterwards.

    Its adapters hold `api_key` (None: no key at all); `knobs` override `SimulatorKnobs` fields.
    """
    spec = PROVIDERS[name]
    settings = {"seed": 11, "provision_seconds": PROVISION_SECONDS, **knobs}
    made = SimulatorKnobs(**settings)
    server = start_simulator(spec, made)
    try:
        key = spec.demo_api_key if api_key is Key.DEMO else api_key
        yield SimulatedProvider(spec, server, made, key)
    finally:
        server.stop()


def wait_for(adapter: Any, handle: str, status: InstanceStatus) -> Instance:
    """Poll until the instance reaches `status`, a bounded number of times."""
    instance: Instance = adapter.status(handle)
    for _ in range(POLL_ATTEMPTS):
        if instance.status is status:
            return instance
        time.sleep(POLL_PAUSE)
        instance = adapter.status(handle)
    raise AssertionError(f"{handle} stayed {instance.status}, never {status}")


def fill(adapter: Any, offer: Offer, workload: Workload) -> list[str]:
    """Rent `offer` until the provider refuses for want of capacity in that region.

    Returns the handles of what it rented (at least one); a refusal of any other kind, or
    capacity that never runs out, fails the test.
    """
    handles: list[str] = []
    for n in range(POLL_ATTEMPTS):
        try:
            handles.append(adapter.provision(offer, workload, f"rnt_fill_{n}").handle)
        except ProviderRefused as refused:
            assert refused.reason == "no_capacity"
            assert scope_of(refused) is Scope.REGION
            assert handles
            return handles
    raise AssertionError("capacity never ran out")


def fixture_loader(provider: str) -> Callable[[str], Any]:
    """`load(name)`: the recorded JSON answer `name` of `provider` (`.json` may be left off)."""
    folder = FIXTURES / provider

    def load(name: str) -> Any:
        path = folder / name
        return json.loads((path if path.exists() else folder / f"{name}.json").read_text())

    return load


def by_id(offers: list[Offer]) -> dict[str, Offer]:
    return {offer.id: offer for offer in offers}


def listed_offer(page: OfferPage, offer_id: str, /, **ref: str) -> Offer:
    """Offer `offer_id` as `page` lists it, with `ref` added to (or replacing in) its reference.

    Rental tests start from an offer the recorded catalog really lists, so what they rent is what
    a refresh would have stored.
    """
    listed = by_id(page.offers)[offer_id]
    return replace(listed, ref={**listed.ref, **ref})


def assert_unsupported(check: Callable[[], object], field: str, words: str) -> None:
    """`check` rejects its workload as unsupported, naming `field` and saying `words`."""
    with pytest.raises(UnsupportedWorkload) as unsupported:
        check()
    assert unsupported.value.field == field
    assert words in unsupported.value.message


def assert_body_refused(
    unrunnable: Callable[[], object], bare: Callable[[], object], missing: str
) -> None:
    """Building a request body is refused for an unrunnable workload, and for an offer whose
    reference lacks `missing`: a bug to fix, not a rental to retry elsewhere."""
    for attempt in (unrunnable, bare):
        with pytest.raises(ProviderRefused) as refused:
            attempt()
        assert refused.value.reason == "refused"
    assert missing in refused.value.message
