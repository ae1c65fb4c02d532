"""`broker.client.Client` against a live broker over HTTP: typed answers, pages, waiting, errors."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.client import BrokerError, Client
from broker.client.config import Profile, save_profile
from broker.schemas.catalog import Offer
from broker.schemas.rentals import Rental
from providers.simulators.kit import serve_in_thread
from tests.cli.live import Live

WORKLOAD = {"mode": "custom", "image": "busybox", "ports": [80]}


def test_catalog_answers_are_typed_and_pages_are_followed(live: Live) -> None:
    with Client(live.url) as client:
        page = client.offers(provider="empiriolabs", limit=2)
        assert len(page.data) == 2 and page.next_cursor is not None
        assert all(isinstance(o, Offer) for o in page.data)
        assert isinstance(page.data[0].price_per_gpu_hour, Decimal)
        everything = list(client.iter_offers(provider="empiriolabs", limit=2))
        assert len(everything) == len({o.id for o in everything}) > 2
        assert [o.id for o in everything[:2]] == [o.id for o in page.data]
        assert client.offer(everything[-1].id).id == everything[-1].id
        gpus = client.gpus().data
        assert {row.gpu for row in gpus} >= {o.gpu for o in everything}


def test_rent_wait_stop_start_terminate(live: Live) -> None:
    with Client(live.url, live.api_key) as client:
        offer = next(client.iter_offers(provider="empiriolabs", gpu_count=1))
        rental = client.rent(
            offer.id, expected_price=offer.price_per_gpu_hour, idempotency_key="once", **WORKLOAD
        )
        assert isinstance(rental, Rental) and rental.rental_key
        again = client.rent(
            offer.id, expected_price=offer.price_per_gpu_hour, idempotency_key="once", **WORKLOAD
        )
        assert again.id == rental.id  # the same key never rents twice
        running = client.wait(rental.id, "running", timeout=30, interval=0.05)
        assert running.status == "running" and running.started_at is not None
        assert [r.id for r in client.iter_rentals(limit=1)] == [rental.id]
        assert client.stop(rental.id).status in ("stopped", "running")
        client.wait(rental.id, "stopped", timeout=30, interval=0.05)
        client.start(rental.id)
        client.wait(rental.id, "running", timeout=30, interval=0.05)
        ended = client.terminate(rental.id)
        assert ended.status == "terminated" and ended.cost is not None
        with pytest.raises(BrokerError) as waited:
            client.wait(rental.id, "running", timeout=30, interval=0.05)
        assert waited.value.code == "wait_ended"
        wallet = client.wallet()
        assert wallet.balance == Decimal("20") - ended.cost
        entries = list(client.iter_ledger(limit=1))  # one entry a page, every page followed
        assert len({e.id for e in entries}) == len(entries) >= 3
        assert {"grant", "hold", "release"} <= {e.kind for e in entries}


def test_errors_carry_status_code_param_and_attempts(live: Live) -> None:
    with Client(live.url, live.api_key) as client:
        with pytest.raises(BrokerError) as bad:
            client.offers(tier="cheap")  # a wrong value on purpose
        assert (bad.value.status, bad.value.code, bad.value.param) == (
            422,
            "invalid_request",
            "tier",
        )
        with pytest.raises(BrokerError) as missing:
            client.rental("rnt_nothing")
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        with pytest.raises(BrokerError) as none:
            client.rent(gpu="RTX 4090", max_price="0.01", **WORKLOAD)
        assert (none.value.status, none.value.code) == (503, "no_capacity")
        assert none.value.attempts == []
    with Client(live.url, "gbk_wrong") as stranger, pytest.raises(BrokerError) as refused:
        stranger.wallet()
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")


def test_rent_failing_over_reports_each_attempt(live: Live) -> None:
    live.sims["empiriolabs"].knobs.refuse_next(50, "capacity")
    with Client(live.url, live.api_key) as client, pytest.raises(BrokerError) as failed:
        client.rent(providers=["empiriolabs"], gpu_count=1, **WORKLOAD)
    assert failed.value.code == "no_capacity" and failed.value.attempts
    assert all(a.provider == "empiriolabs" for a in failed.value.attempts)


def test_a_server_that_is_not_a_broker_is_a_clear_error() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"<html>hello</html>"})

    server = serve_in_thread(app)
    try:
        with Client(server.url) as client, pytest.raises(BrokerError) as wrong:
            client.gpus()
    finally:
        server.stop()
    assert wrong.value.code == "bad_response" and "gpubroker" in wrong.value.message
    with pytest.raises(BrokerError) as bad_url:
        Client("http://[::1")
    assert bad_url.value.code == "bad_url"
    with Client("http://127.0.0.1:9") as client, pytest.raises(BrokerError) as down:
        client.gpus()
    assert (down.value.status, down.value.code) == (0, "unreachable")


def test_defaults_come_from_the_environment_then_the_profile(
    live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("GPUBROKER_URL", raising=False)
    monkeypatch.delenv("GPUBROKER_API_KEY", raising=False)
    path = save_profile(Profile(url=live.url, api_key=live.api_key))
    assert path == tmp_path / "gpubroker" / "config.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Client() as client:
        assert client.url == live.url and client.wallet().available == Decimal("20")
    monkeypatch.setenv("GPUBROKER_API_KEY", "gbk_from_env")
    with Client() as client, pytest.raises(BrokerError) as refused:
        client.wallet()  # the environment wins over the profile
    assert refused.value.status == 401
    assert httpx.get(f"{live.url}/healthz").status_code in (200, 503)
