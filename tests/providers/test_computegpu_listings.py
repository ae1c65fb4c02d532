"""ComputeGPU marketplace listings rented through the adapter, against the simulator over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pricing.offer import Tier
from providers.base import ProviderRefused
from providers.computegpu.adapter import ComputeGpuAdapter
from providers.rental import InstanceStatus, NotSupported, Scope, scope_of
from providers.simulators.kit import SimulatorKnobs
from tests.providers.support import SimulatedProvider
from tests.providers.test_computegpu_rentals import API_KEY, listing_offer, served_model

pytestmark = pytest.mark.provider("computegpu", api_key=API_KEY)

# --- marketplace listings ----------------------------------------------------------------------


def test_a_listing_rental_runs_at_once_and_ends_with_stop(
    adapter: ComputeGpuAdapter, sim: Any
) -> None:
    offer = listing_offer(adapter)
    listing = next(item for item in sim.listings if item.id == offer.ref["listing_id"])

    created = adapter.provision(offer, served_model(offer), "rnt_listing")

    assert created.handle.startswith("listing:rnt_")
    assert created.status is InstanceStatus.RUNNING
    assert created.rental_id is None
    assert adapter.status(created.handle).status is InstanceStatus.RUNNING
    # Single-tenant: the listing is off the market while it is rented.
    assert listing.available is False
    assert not next(o for o in adapter.list_offers().offers if o.id == offer.id).available
    with pytest.raises(NotSupported):
        adapter.stop(created.handle)
    with pytest.raises(NotSupported):
        adapter.start(created.handle)

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)

    assert ended.status is InstanceStatus.TERMINATED
    assert ended.ended_at is not None
    assert again.status is InstanceStatus.TERMINATED
    assert adapter.status(created.handle).status is InstanceStatus.TERMINATED
    assert next(o for o in adapter.list_offers().offers if o.id == offer.id).available


def test_a_rented_listing_cannot_be_rented_twice(adapter: ComputeGpuAdapter) -> None:
    offer = listing_offer(adapter)
    adapter.provision(offer, served_model(offer), "rnt_first")

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer, served_model(offer), "rnt_second")

    # One host's machine being taken says nothing about other hosts in its country.
    assert (raised.value.reason, raised.value.status) == ("offer_gone", 409)
    assert scope_of(raised.value) is Scope.OFFER


def test_a_listing_rental_key_comes_once_with_the_rent_and_never_the_account_key(
    adapter: ComputeGpuAdapter, provider: SimulatedProvider, sim: Any
) -> None:
    offer = listing_offer(adapter)
    created = adapter.provision(offer, served_model(offer), "rnt_up")
    rental = sim.book.rentals[created.handle.removeprefix("listing:")]

    upstream = created.upstream

    assert upstream is not None
    assert upstream.base_url == f"{provider.url}/api/v1/ollama/{rental.id}"
    assert upstream.headers == {"Authorization": f"Bearer {rental.api_key}"}
    assert API_KEY not in str(upstream.headers)
    assert rental.api_key not in repr(created)
    # The document: the rental detail carries neither the key nor the endpoint.
    detail = httpx.get(
        f"{provider.url}/api/v1/marketplace/rentals/{rental.id}",
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).json()["rental"]
    assert "apiKey" not in detail and "endpoint" not in detail
    with pytest.raises(ProviderRefused) as unknown:
        adapter.upstream(created.handle)
    assert unknown.value.reason == "conflict"
    assert rental.api_key not in unknown.value.message

    reached = httpx.post(
        f"{upstream.base_url}/api/chat",
        headers=dict(upstream.headers),
        json={"model": served_model(offer).model, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert reached.status_code == 200, reached.text


def test_a_spot_listing_the_host_takes_back_is_interrupted(
    adapter: ComputeGpuAdapter, provider: SimulatedProvider
) -> None:
    offer = listing_offer(adapter, Tier.SPOT)
    handle = adapter.provision(offer, served_model(offer), "rnt_spot_listing").handle

    answer = provider.interrupt(handle)
    instance = adapter.status(handle)

    assert answer.status_code == 200
    assert (instance.status, instance.reason) == (InstanceStatus.INTERRUPTED, "preempted")
    assert instance.ended_at is not None
    assert adapter.terminate(handle).status is InstanceStatus.INTERRUPTED


@pytest.mark.parametrize(
    ("kind", "reason", "scope"),
    [
        ("capacity", "offer_gone", Scope.OFFER),
        ("payment", "insufficient_funds", Scope.PROVIDER),
        ("conflict", "conflict", Scope.OFFER),
        ("gone", "offer_gone", Scope.OFFER),
    ],
)
def test_each_listing_refusal_kind_has_its_reason_and_scope(
    adapter: ComputeGpuAdapter,
    sim: Any,
    knobs: SimulatorKnobs,
    kind: Any,
    reason: str,
    scope: Scope,
) -> None:
    offer = listing_offer(adapter)
    knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as raised:
        adapter.provision(offer, served_model(offer), "rnt_refused")

    assert (raised.value.reason, scope_of(raised.value)) == (reason, scope)
    assert sim.book.rentals == {}
