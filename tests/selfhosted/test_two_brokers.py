"""Two brokers with different databases on one Docker engine and one host (a staging broker next
to production, a test run next to a demo): each labels its containers with its own deployment
id, and neither one's reconciliation touches the other's containers, running or orphaned."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from broker.app import create_app
from broker.settings import CoreSettings
from providers.rental import Workload
from tests.brokers import ADMIN, FakeClock, bearer, close_clients, open_account, open_client
from tests.selfhosted.conftest import WORKLOAD, Host, SelfHostedBroker

Build = Callable[[str], SelfHostedBroker]


@pytest.fixture
def brokers(
    host: Host,
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    tmp_path: Path,
) -> Iterator[Build]:
    """`build(url)`: a funded broker on the database at `url`, on this test's host."""
    opened: list[TestClient] = []

    def build(url: str) -> SelfHostedBroker:
        settings = make_settings(
            database_url=url, providers="selfhosted", **host.options("3xRTX 4090")
        )
        clock = FakeClock()
        app = create_app(settings, start_jobs=False, clock=clock)
        app.state.refresher.refresh_all()
        client = open_client(app, opened)
        made = open_account(client)
        headers = bearer(made["api_key"])
        return SelfHostedBroker(client, app, clock, {}, made["account_id"], headers, settings)

    yield build
    close_clients(opened)


def labels(host: Host) -> dict[str, dict[str, Any]]:
    return {c["Id"]: c["Labels"] for c in host.containers()}


def test_neither_broker_touches_the_others_containers(
    brokers: Build, host: Host, database_url: str, tmp_path: Path
) -> None:
    production = brokers(database_url)
    staging = brokers(f"sqlite:///{tmp_path / 'staging.db'}")
    assert production.app.state.deployment != staging.app.state.deployment

    served = production.rent({"gpu": "RTX 4090", **WORKLOAD}).json()
    production.wait_status(served["id"], "running")
    tried = staging.rent({"gpu": "RTX 4090", **WORKLOAD}).json()
    staging.wait_status(tried["id"], "running")
    offer = production.app.state.catalog.index.get(f"selfhosted:sim:{host.region}:rtx-4090:1x")
    orphan = production.adapter.provision(
        offer, Workload(image=WORKLOAD["image"], ports=(80,)), "rnt_lost_by_production"
    )
    by_id = labels(host)
    assert len(by_id) == 3
    assert by_id[orphan.handle]["gpubroker.deployment"] == production.app.state.deployment
    owners = {c["gpubroker.rental"]: c["gpubroker.deployment"] for c in by_id.values()}
    assert owners[tried["id"]] == staging.app.state.deployment

    for _ in range(2):  # several passes, in either order
        skipped = staging.app.state.reconciler.run()
        assert skipped.orphans_terminated == [] and skipped.rentals_lost == []
        assert {f["rental_id"] for f in skipped.skipped_foreign} == {
            served["id"],
            "rnt_lost_by_production",
        }
    assert len(host.containers()) == 3

    cleaned = production.app.state.reconciler.run()
    assert cleaned.orphans_terminated == [orphan.handle]
    assert [f["rental_id"] for f in cleaned.skipped_foreign] == [tried["id"]]
    assert {c["gpubroker.rental"] for c in labels(host).values()} == {served["id"], tried["id"]}
    assert production.wait_status(served["id"], "running")["status"] == "running"
    assert staging.wait_status(tried["id"], "running")["status"] == "running"

    staging.app.state.reconciler.run()
    shown = staging.client.get("/v1/admin/reconciliation", headers=ADMIN).json()
    assert shown["deployment_id"] == staging.app.state.deployment
    assert all(run["counts"]["orphans_terminated"] == 0 for run in shown["data"])
    assert shown["data"][0]["counts"]["skipped_foreign"] == 1
