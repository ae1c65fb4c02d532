"""What every simulated provider must do alike when renting, over real HTTP against its simulator.

The catalog has its conformance suite (`test_conformance.py`); this is the same idea for rentals.
Each provider in `providers.registry.PROVIDERS` that has a simulator is started from its spec and
rented through its own adapter. What the providers legitimately differ in is data, not code: the
`TRAITS` table, read from tests/fixtures/rental_traits.json, says, per provider, which offer and
workload a plain rental uses, what its handles look like, whether it can stop and start, list its
instances or lose a spot instance, which handles it must not know, which wrong keys to try, and
whether a failed provision answer is retried (an idempotent API) or never repeated. The suite then
holds every provider to the same lifecycle, refusal, unknown-handle, authorization and fault rules.
A provider's own test file keeps only what is particular to it: its API's fields, its words for
errors, its quirks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pricing.offer import Offer
from providers.base import ProviderRefused, ProviderUnavailable
from providers.registry import PROVIDERS
from providers.rental import (
    InstanceStatus,
    NotSupported,
    Scope,
    Workload,
    WorkloadMode,
    scope_of,
)
from tests.providers.support import FIXTURES, SIMULATED, SimulatedProvider, simulated, wait_for

Pick = Callable[[Offer], bool]


@dataclass(frozen=True)
class Traits:
    """What one provider's rentals look like and what its API can do."""

    workload: Workload  # what a plain rental runs
    plain: Pick  # the offer a plain rental takes
    handle_prefix: str
    echoes_rental_id: bool  # the provider keeps the broker's rental id on the instance
    stops: bool  # stop and start exist
    lists: bool  # list_instances exists
    unknown_handles: tuple[str, ...]
    not_found_on: tuple[str, ...]  # operations that answer `not_found` for an unknown handle
    wrong_keys: tuple[str | None, ...]
    retries_provision: bool  # idempotent provisioning: a failed answer is retried, never doubled
    steady: Pick  # an offer whose rentals the provider never takes back
    conflict_code: tuple[tuple[str, ...], str] | None  # where the 409 names itself, and how
    spot: Pick | None = None  # an offer whose rentals can be interrupted
    spot_reason: str = ""  # the provider's word for the interruption
    interrupted_ends_as: InstanceStatus = InstanceStatus.TERMINATED
    stamps_end: bool = True  # a terminated instance says when it ended
    public_catalog: bool = True  # the catalog answers without a key
    refusal_statuses: Mapping[str, int] = field(default_factory=dict)  # beside REFUSALS' own


def accepting(wanted: Mapping[str, Any]) -> Pick:
    """Offers whose fields (or, for a name no field has, whose ref entries) are as `wanted` says."""

    def accepts(offer: Offer) -> bool:
        return all(
            (getattr(offer, name) if hasattr(offer, name) else offer.ref.get(name)) == value
            for name, value in wanted.items()
        )

    return accepts


def traits_of(row: dict[str, Any]) -> Traits:
    """One provider's traits as tests/fixtures/rental_traits.json writes them."""
    workload = row.pop("workload")
    mode = WorkloadMode(workload.pop("mode", WorkloadMode.CUSTOM))
    ports = tuple(workload.pop("ports", ()))
    picks: dict[str, Any] = {
        name: accepting(row.pop(name)) for name in ("plain", "steady", "spot") if name in row
    }
    conflict = row.pop("conflict_code")
    return Traits(
        workload=Workload(mode=mode, ports=ports, **workload),
        conflict_code=None if conflict is None else (tuple(conflict[0]), conflict[1]),
        unknown_handles=tuple(row.pop("unknown_handles")),
        not_found_on=tuple(row.pop("not_found_on")),
        wrong_keys=tuple(row.pop("wrong_keys")),
        interrupted_ends_as=InstanceStatus(row.pop("interrupted_ends_as", "terminated")),
        **picks,
        **row,
    )


TRAITS = {
    name: traits_of(row)
    for name, row in json.loads((FIXTURES / "rental_traits.json").read_text()).items()
}
SPOT = [name for name in SIMULATED if TRAITS[name].spot is not None]
REFUSALS = [
    ("capacity", "no_capacity", Scope.REGION, 409),
    ("payment", "insufficient_funds", Scope.PROVIDER, 402),
    ("conflict", "conflict", Scope.OFFER, 409),
    ("gone", "offer_gone", Scope.OFFER, 404),
]


def test_every_simulated_provider_has_its_traits() -> None:
    assert set(TRAITS) == set(SIMULATED)
    assert set(SIMULATED) == set(PROVIDERS) - {"selfhosted"}


@pytest.fixture(params=SIMULATED)
def provider(request: pytest.FixtureRequest) -> Iterator[SimulatedProvider]:
    """Each simulated provider in turn, started from the seed for this test alone."""
    with simulated(request.param) as running:
        yield running


@pytest.fixture
def traits(provider: SimulatedProvider) -> Traits:
    return TRAITS[provider.spec.name]


def offer_of(adapter: Any, pick: Pick) -> Offer:
    """The first available offer of the live catalog that `pick` accepts."""
    for offer in adapter.list_offers().offers:
        if offer.available and pick(offer):
            return offer
    raise AssertionError("no available offer of the kind asked for")


def dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


def test_a_rental_provisions_runs_and_terminates_twice_harmlessly(
    adapter: Any, provider: SimulatedProvider, traits: Traits
) -> None:
    created = adapter.provision(offer_of(adapter, traits.plain), traits.workload, "rnt_life")

    assert created.status is InstanceStatus.PROVISIONING
    assert created.provider == provider.spec.name
    assert created.handle.startswith(traits.handle_prefix)
    assert created.rental_id == ("rnt_life" if traits.echoes_rental_id else None)
    assert str(provider.api_key) not in repr(created)
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING
    assert len(provider.instances()) == 1
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    if traits.stops:
        assert adapter.stop(created.handle).status is InstanceStatus.STOPPED
        assert adapter.status(created.handle).status is InstanceStatus.STOPPED
        assert adapter.start(created.handle).status is InstanceStatus.PROVISIONING
        wait_for(adapter, created.handle, InstanceStatus.RUNNING)
    else:
        for operation in (adapter.stop, adapter.start):
            with pytest.raises(NotSupported):
                operation(created.handle)
        assert adapter.status(created.handle).status is InstanceStatus.RUNNING
    if not traits.lists:
        with pytest.raises(NotSupported):
            adapter.list_instances()

    ended = adapter.terminate(created.handle)
    again = adapter.terminate(created.handle)

    assert ended.status is again.status is InstanceStatus.TERMINATED
    assert (ended.ended_at is not None) is traits.stamps_end
    assert adapter.status(created.handle).status is InstanceStatus.TERMINATED


@pytest.mark.parametrize(("kind", "reason", "scope", "status"), REFUSALS)
def test_each_refusal_kind_has_its_reason_scope_and_status_and_rents_nothing(
    adapter: Any,
    provider: SimulatedProvider,
    traits: Traits,
    kind: Any,
    reason: str,
    scope: Scope,
    status: int,
) -> None:
    offer = offer_of(adapter, traits.plain)
    provider.knobs.refuse_next(1, kind)

    with pytest.raises(ProviderRefused) as refused:
        adapter.provision(offer, traits.workload, "rnt_refused")

    expected = (reason, traits.refusal_statuses.get(kind, status))
    assert (refused.value.reason, refused.value.status) == expected
    assert scope_of(refused.value) is scope
    assert provider.instances() == []
    # The refusal was one-off: the next provision goes through.
    after = adapter.provision(offer, traits.workload, "rnt_after")
    assert after.status is InstanceStatus.PROVISIONING


def test_an_unknown_handle_is_not_found_and_terminating_it_is_harmless(
    adapter: Any, traits: Traits
) -> None:
    for handle in traits.unknown_handles:
        for operation in traits.not_found_on:
            with pytest.raises(ProviderRefused) as missing:
                getattr(adapter, operation)(handle)
            assert missing.value.reason == "not_found", (handle, operation)
        assert adapter.terminate(handle).status is InstanceStatus.TERMINATED


def test_a_missing_or_wrong_key_is_unauthorized_at_the_provider_scope(
    adapter: Any, provider: SimulatedProvider, traits: Traits
) -> None:
    for key in traits.wrong_keys:
        keyless = provider.adapter(api_key=key)
        try:
            offer = offer_of(keyless if traits.public_catalog else adapter, traits.plain)
            with pytest.raises(ProviderRefused) as refused:
                keyless.provision(offer, traits.workload, "rnt_nokey")
            if traits.lists:
                with pytest.raises(ProviderRefused) as listing:
                    keyless.list_instances()
                assert listing.value.reason == "unauthorized"
        finally:
            keyless.close()

        assert (refused.value.status, refused.value.reason) == (401, "unauthorized")
        assert scope_of(refused.value) is Scope.PROVIDER
        assert not key or key not in str(refused.value)
    assert provider.instances() == []


@pytest.mark.parametrize("faults", [("5xx",), ("5xx", "429")])
def test_a_failed_provision_answer_is_retried_only_where_provisioning_is_idempotent(
    adapter: Any, provider: SimulatedProvider, traits: Traits, faults: tuple[str, ...]
) -> None:
    """Retried, the provider holds one rental; not retried, none (one attempt, one failure)."""
    offer = offer_of(adapter, traits.plain)
    provider.knobs.retry_after_seconds = 0.01
    if not traits.retries_provision:
        faults = faults[:1]
    for fault in faults:
        provider.knobs.fail_next(1, fault)

    if traits.retries_provision:
        created = adapter.provision(offer, traits.workload, "rnt_retried")
        assert [i["id"] for i in provider.instances()] == [created.handle.rpartition(":")[2]]
    else:
        with pytest.raises(ProviderUnavailable):
            adapter.provision(offer, traits.workload, "rnt_once")
        assert provider.instances() == []
    assert not provider.knobs.forced


def test_a_rental_the_provider_keeps_cannot_be_interrupted(
    adapter: Any, provider: SimulatedProvider, traits: Traits
) -> None:
    provider.knobs.provision_seconds = 60  # still starting when asked, however slow the machine
    created = adapter.provision(offer_of(adapter, traits.steady), traits.workload, "rnt_od")

    answered = provider.interrupt(created.handle)

    assert answered.status_code == 409
    if traits.conflict_code is not None:
        path, code = traits.conflict_code
        assert dig(answered.json(), path) == code
    assert adapter.status(created.handle).status is InstanceStatus.PROVISIONING


@pytest.mark.parametrize("provider", SPOT, indirect=True)
def test_a_spot_interruption_ends_the_rental_in_the_providers_words(
    adapter: Any, provider: SimulatedProvider, traits: Traits
) -> None:
    assert traits.spot is not None
    created = adapter.provision(offer_of(adapter, traits.spot), traits.workload, "rnt_spot")
    wait_for(adapter, created.handle, InstanceStatus.RUNNING)

    answered = provider.interrupt(created.handle)
    lost = adapter.status(created.handle)

    assert answered.status_code == 200
    assert (lost.status, lost.reason) == (InstanceStatus.INTERRUPTED, traits.spot_reason)
    assert lost.ended_at is not None
    assert adapter.terminate(created.handle).status is traits.interrupted_ends_as
