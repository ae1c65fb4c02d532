"""Reconciliation touches only this deployment's instances, records every placement before the
provider hears of it, and reports what it found and did (log, metric, admin endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import select

from broker import accounts, ledger
from broker.ownership import resolve_deployment
from broker.rentals.tables import Placement, Rental
from pricing.offer import Offer
from providers.base import ProviderConfig
from providers.registry import PROVIDERS
from providers.rental import Instance, RentalProvider, Workload, WorkloadMode
from tests.brokers import ADMIN, Sim
from tests.ownership.conftest import Broker

FLUENCE_WORK = Workload(mode=WorkloadMode.CUSTOM, image="ghcr.io/acme/web", ports=(80,))
ICGPU_WORK = Workload(mode=WorkloadMode.SSH, ssh_key="ssh-ed25519 AAAAC3Nza test")
EMPIRIO_WORK = Workload(mode=WorkloadMode.CUSTOM, image="vllm/vllm-openai", ports=(8000,))
WORK = {"fluence": FLUENCE_WORK, "icgpu": ICGPU_WORK, "empiriolabs": EMPIRIO_WORK}


def offer_for(broker: Broker, provider: str) -> Offer:
    adapter = broker.adapter(provider)
    for offer in adapter.list_offers().offers:
        if offer.available and offer.gpu_count == 1:
            try:
                adapter.check_workload(offer, WORK[provider])
            except ValueError:
                continue
            return offer
    raise AssertionError(f"no {provider} offer runs the test workload")


def start(broker: Broker, provider: str, rental_id: str, deployment: str | None) -> Instance:
    """An instance at `provider` started by an adapter of `deployment` (None: untagged)."""
    sim: Sim = broker.sims[provider]
    adapter: RentalProvider = PROVIDERS[provider].make_adapter(  # type: ignore[assignment]
        ProviderConfig(sim.server.url, PROVIDERS[provider].demo_api_key, deployment_id=deployment)
    )
    try:
        return adapter.provision(offer_for(broker, provider), WORK[provider], rental_id)
    finally:
        adapter.close()


def alive(broker: Broker, provider: str, handle: str) -> bool:
    status = broker.adapter(provider).status(handle).status.value
    return status not in ("terminated", "failed")


def test_the_deployment_id_is_made_once_and_shared_by_every_start(
    make_broker: Callable[..., Broker],
) -> None:
    first = make_broker()
    again = make_broker()
    assert first.deployment == again.deployment
    assert first.deployment.startswith("gpb-")
    assert resolve_deployment(first.app.state.db, "staging-2") == "staging-2"
    assert make_broker(deployment_id="staging-2").deployment == "staging-2"


def test_foreign_instances_are_left_alone_and_own_orphans_terminated(
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker()
    ours = {p: start(broker, p, f"rnt_orphan_{p}", broker.deployment) for p in ("fluence", "icgpu")}
    theirs = {p: start(broker, p, f"rnt_theirs_{p}", "other-broker") for p in ("fluence", "icgpu")}

    report = broker.app.state.reconciler.run()

    assert sorted(report.orphans_terminated) == sorted(i.handle for i in ours.values())
    assert not any(alive(broker, p, i.handle) for p, i in ours.items())
    assert all(alive(broker, p, i.handle) for p, i in theirs.items())
    foreign = {(f["provider"], f["handle"], f["deployment"]) for f in report.skipped_foreign}
    assert foreign == {(p, i.handle, "other-broker") for p, i in theirs.items()}

    shown = broker.findings()
    assert shown["deployment_id"] == broker.deployment
    [latest] = shown["data"][:1]
    assert latest["counts"]["orphans_terminated"] == 2
    assert latest["counts"]["skipped_foreign"] == 2
    assert {f["handle"] for f in latest["findings"]["skipped_foreign"]} == {
        i.handle for i in theirs.values()
    }
    metrics = broker.api.get("/metrics").text
    assert (
        'gpubroker_reconcile_findings_total{kind="skipped_foreign",provider="fluence"}' in metrics
    )
    assert broker.api.get("/v1/admin/reconciliation").status_code == 401
    assert (
        broker.api.get("/v1/admin/reconciliation", params={"limit": 0}, headers=ADMIN).status_code
        == 422
    )


def test_untagged_instances_are_ended_only_on_an_exclusive_account(
    make_broker: Callable[..., Broker],
) -> None:
    shared = make_broker(exclusive_providers="")
    untagged = {p: start(shared, p, f"rnt_bare_{p}", None) for p in ("empiriolabs", "fluence")}

    report = shared.app.state.reconciler.run()

    assert report.orphans_terminated == []
    assert {(f["provider"], f["handle"]) for f in report.skipped_untagged} == {
        (p, i.handle) for p, i in untagged.items()
    }
    assert all(alive(shared, p, i.handle) for p, i in untagged.items())

    default = make_broker()  # as always: an account no tag can mark is assumed the broker's
    assert "empiriolabs" in default.app.state.reconciler.exclusive
    assert "fluence" not in default.app.state.reconciler.exclusive
    report = default.app.state.reconciler.run()
    assert report.orphans_terminated == [untagged["empiriolabs"].handle]
    assert alive(default, "fluence", untagged["fluence"].handle)

    declared = make_broker(exclusive_providers="fluence")
    assert declared.app.state.reconciler.run().orphans_terminated == [untagged["fluence"].handle]


def test_the_placement_is_recorded_before_the_provider_is_called(
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker()
    adapter = broker.adapter("fluence")
    seen: list[list[tuple[str, str | None]]] = []
    provision = adapter.provision

    def watched(offer: Offer, workload: Workload, rental_id: str) -> Instance:
        with broker.app.state.db.session(read_only=True) as session:
            rows = session.exec(select(Placement).where(Placement.rental_id == rental_id)).all()
            seen.append([(row.provider, row.outcome) for row in rows])
        return provision(offer, workload, rental_id)

    adapter.provision = watched  # type: ignore[method-assign]
    offer = offer_for(broker, "fluence")
    rental = broker.rent(offer.id, {"mode": "custom", "image": "ghcr.io/acme/web", "ports": [80]})

    assert seen == [[("fluence", None)]]
    with broker.app.state.db.session(read_only=True) as session:
        [row] = session.exec(select(Placement).where(Placement.rental_id == rental["id"])).all()
    assert (row.offer_id, row.outcome) == (offer.id, "placed")
    with broker.app.state.db.session(read_only=True) as session:
        stored = session.get(Rental, rental["id"])
    assert stored is not None and stored.handle is not None
    assert row.handle == stored.handle


def test_a_placement_cut_short_is_reported_and_its_instance_found(
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker(provision_grace_seconds=60)
    db = broker.app.state.db
    offer = offer_for(broker, "fluence")
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with db.session() as session:
        account, _ = accounts.create_account(session, "crashed")
        ledger.grant(session, account.id, 10_000_000, "credit")
        rental = Rental(
            account_id=account.id,
            request_hash="h",
            request={},
            rental_key_hash="c" * 64,
            created_at=long_ago,
        )
        session.add(rental)
        session.flush()
        rental.hold_id = ledger.place_hold(session, account.id, 1_000_000, ref=rental.id).id
        session.add(
            Placement(
                rental_id=rental.id, provider="fluence", offer_id=offer.id, started_at=long_ago
            )
        )
    # The provider accepted; the broker died before it heard back.
    orphan = broker.adapter("fluence").provision(offer, FLUENCE_WORK, rental.id)

    report = broker.app.state.reconciler.run()

    [cut] = report.interrupted_placements
    assert (cut["rental_id"], cut["provider"], cut["offer_id"]) == (rental.id, "fluence", offer.id)
    assert report.failed_placements == [rental.id]
    assert report.orphans_terminated == [orphan.handle]
    with db.session(read_only=True) as session:
        assert ledger.check_invariants(session, account.id).held == 0
    shown: dict[str, Any] = broker.findings()["data"][0]["findings"]
    assert shown["interrupted_placements"][0]["rental_id"] == rental.id
    assert broker.app.state.reconciler.run().interrupted_placements == []  # reported once
    assert httpx.get(f"{broker.server.url}/healthz").status_code == 200
