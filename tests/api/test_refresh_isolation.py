"""One provider failing or hanging never stops search: real simulators, real HTTP, real jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from broker.app import create_app
from pricing.catalog import Catalog
from pricing.refresh import Refresher
from pricing.source import StreamingOfferSource
from providers.base import ProviderConfig
from providers.computegpu.adapter import ComputeGpuAdapter
from providers.empiriolabs.adapter import EmpirioLabsAdapter
from providers.simulators.computegpu import create_simulator as computegpu_simulator
from providers.simulators.empiriolabs import create_simulator as empiriolabs_simulator
from providers.simulators.kit import RunningServer, SimulatorKnobs, serve_in_thread
from tests.providers.support import simulated


@pytest.fixture
def live(
    make_settings: Callable[..., object],
) -> Iterator[tuple[TestClient, SimulatorKnobs, SimulatorKnobs]]:
    steady, flaky = SimulatorKnobs(), SimulatorKnobs(hang_seconds=3)  # past the 1 s timeout
    servers: list[RunningServer] = [
        serve_in_thread(empiriolabs_simulator(steady)),
        serve_in_thread(computegpu_simulator(flaky)),
    ]
    fast = {"timeout_seconds": 1.0, "retry_attempts": 2, "retry_max_wait_seconds": 0.05}
    adapters = {
        "empiriolabs": EmpirioLabsAdapter(ProviderConfig(servers[0].url, **fast)),
        "computegpu": ComputeGpuAdapter(ProviderConfig(servers[1].url, **fast)),
    }
    app = create_app(make_settings(), adapters=adapters, start_jobs=False)
    try:
        with TestClient(app) as client:
            yield client, steady, flaky
    finally:
        for server in servers:
            server.stop()


def counts(client: TestClient) -> dict[str, dict[str, object]]:
    return client.get("/v1/offers", params={"limit": 1}).json()["providers"]


def test_a_hanging_provider_delays_neither_queries_nor_the_others(live) -> None:  # type: ignore[no-untyped-def]
    client, _, flaky = live
    refresher = client.app.state.refresher
    assert refresher.refresh_all() == {"empiriolabs": True, "computegpu": True}
    before = counts(client)
    assert before["computegpu"]["status"] == "ok"

    flaky.error_rate, flaky.error_kinds = 1.0, ("timeout",)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (refresher.refresh("computegpu"), done.set()))
    thread.start()
    # While computegpu's refresh hangs: empiriolabs refreshes and search answers at once.
    assert refresher.refresh("empiriolabs") is True
    body = client.get("/v1/offers", params={"provider": "computegpu", "limit": 5}).json()
    assert not done.is_set()
    assert len(body["data"]) == 5
    thread.join(timeout=30)
    assert done.is_set()

    after = counts(client)
    assert after["computegpu"]["status"] == "stale"
    assert "timed out" in after["computegpu"]["error"]
    assert after["computegpu"]["offers"] == before["computegpu"]["offers"]
    assert after["empiriolabs"]["status"] == "ok"
    stale = client.get("/v1/offers", params={"provider": "computegpu", "limit": 3}).json()
    assert [o["stale"] for o in stale["data"]] == [True, True, True]

    flaky.error_rate = 0.0
    assert refresher.refresh("computegpu") is True
    assert counts(client)["computegpu"]["status"] == "ok"


def test_garbage_from_a_provider_marks_it_stale_with_the_reason(live) -> None:  # type: ignore[no-untyped-def]
    client, _, flaky = live
    refresher = client.app.state.refresher
    refresher.refresh_all()
    flaky.fail_next(10, "garbage")
    assert refresher.refresh("computegpu") is False
    status = counts(client)["computegpu"]
    assert status["status"] == "stale"
    assert "not JSON" in status["error"]


def test_a_provider_never_reached_is_an_error(live) -> None:  # type: ignore[no-untyped-def]
    client, _, flaky = live
    flaky.error_rate, flaky.error_kinds = 1.0, ("5xx",)
    client.app.state.refresher.refresh_all()
    status = counts(client)
    assert status["computegpu"]["status"] == "error"
    assert status["computegpu"]["offers"] == 0
    assert status["empiriolabs"]["status"] == "ok"


def test_scheduled_jobs_keep_prices_moving_and_record_history(live) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import func, select

    from pricing.history_table import PricePoint

    client, steady, _ = live
    steady.price_drift = 0.05
    refresher = client.app.state.refresher
    refresher.interval_seconds, refresher.jitter_seconds = 0.2, 0
    refresher.start()

    def points() -> int:
        with client.app.state.db.session() as session:
            return session.exec(
                select(func.count())
                .select_from(PricePoint)
                .where(PricePoint.provider == "empiriolabs")
            ).one()

    first_seen = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        first_seen = first_seen or points()
        if first_seen and points() > first_seen:
            break
        time.sleep(0.1)
    refresher.stop()
    assert first_seen > 0
    assert points() > first_seen


def test_a_streamed_answer_fills_the_catalog_as_a_whole_one_would() -> None:
    with simulated("aivory") as running:
        adapter = running.adapter()
        assert isinstance(adapter, StreamingOfferSource)
        streamed, whole = Catalog(["aivory"]), Catalog(["aivory"])
        refresher = Refresher(streamed, {"aivory": adapter})
        try:
            assert refresher.refresh("aivory") is True
            listed = adapter.list_offers().offers
            whole.install("aivory", whole.take(listed), listed[0].updated_at)
            prices = {o.id: o.price_per_gpu_hour for o in streamed.index.offers}
            assert prices == {o.id: o.price_per_gpu_hour for o in whole.index.offers}
            assert len(prices) == len(listed) >= 30

            running.knobs.fail_next(10, "garbage")
            assert refresher.refresh("aivory") is False
            status = streamed.status()["aivory"]
            assert status["status"] == "stale"
            assert "not JSON" in str(status["error"])
            assert status["offers"] == len(listed)
        finally:
            refresher.stop()
