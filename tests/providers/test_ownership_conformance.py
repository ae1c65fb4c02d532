"""Every simulated provider, from its registry spec alone: an instance started by an adapter
configured with a deployment id carries that id back from the provider's listing exactly when
the spec says the provider takes a tag, together with the rental id, over real HTTP.

Self-hosted (Docker labels) is checked on a real engine in tests/selfhosted/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pricing.offer import Offer
from providers.registry import PROVIDERS
from providers.rental import (
    NotSupported,
    RentalProvider,
    UnsupportedWorkload,
    Workload,
    WorkloadMode,
)
from tests.providers.support import SIMULATED, SimulatedProvider, simulated

# Workloads of every kind; each provider runs at least one of them on some offer.
WORKLOADS = (
    Workload(mode=WorkloadMode.CUSTOM, image="ghcr.io/acme/web", ports=(80,)),
    Workload(mode=WorkloadMode.MODEL, model="llama3"),
    Workload(mode=WorkloadMode.MODEL, model="meta-llama/Llama-3-8B"),
    Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAAC3Nza test"),
)


@pytest.fixture(params=SIMULATED)
def provider(request: pytest.FixtureRequest) -> Iterator[SimulatedProvider]:
    with simulated(request.param, seed=5, provision_seconds=0.0) as running:
        yield running


def adapter_for(provider: SimulatedProvider, deployment: str | None) -> RentalProvider:
    adapter: RentalProvider = provider.adapter(deployment_id=deployment)
    return adapter


def runnable(adapter: RentalProvider) -> tuple[Offer, Workload]:
    for offer in adapter.list_offers().offers:
        if not offer.available or offer.gpu_count != 1:
            continue
        for workload in WORKLOADS:
            try:
                adapter.check_workload(offer, workload)
            except UnsupportedWorkload:
                continue
            return offer, workload
    raise AssertionError("no offer runs any of the test workloads")


def test_the_specs_declare_which_providers_tag() -> None:
    tagging = {name for name, spec in PROVIDERS.items() if spec.tags_instances}
    assert tagging == {"fluence", "icgpu", "selfhosted"}
    assert {name for name, spec in PROVIDERS.items() if spec.credentials_once} == {"computegpu"}


def test_instances_carry_the_deployment_where_the_provider_takes_a_tag(
    provider: SimulatedProvider,
) -> None:
    tags = provider.spec.tags_instances
    ours = adapter_for(provider, "dep-ours")
    theirs = adapter_for(provider, "dep-theirs")
    untagged = adapter_for(provider, None)
    try:
        offer, workload = runnable(ours)
        mine = ours.provision(offer, workload, "rnt_ours")
        offer, workload = runnable(theirs)
        other = theirs.provision(offer, workload, "rnt_theirs")
        offer, workload = runnable(untagged)
        bare = untagged.provision(offer, workload, "rnt_bare")

        try:
            listed = {instance.handle: instance for instance in ours.list_instances()}
        except NotSupported:  # cannot list (AIVory): reconciliation never touches it at all
            assert not tags
            listed = {made.handle: ours.status(made.handle) for made in (mine, other, bare)}
    finally:
        for made in (ours, theirs, untagged):
            made.close()

    assert {mine.handle, other.handle, bare.handle} <= listed.keys()
    assert listed[bare.handle].deployment is None
    if tags:
        assert (listed[mine.handle].deployment, listed[mine.handle].rental_id) == (
            "dep-ours",
            "rnt_ours",
        )
        assert (listed[other.handle].deployment, listed[other.handle].rental_id) == (
            "dep-theirs",
            "rnt_theirs",
        )
        assert listed[bare.handle].rental_id == "rnt_bare"
        assert mine.deployment == "dep-ours"
    else:
        assert listed[mine.handle].deployment is None
        assert listed[other.handle].deployment is None
