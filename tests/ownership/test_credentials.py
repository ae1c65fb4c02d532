"""Credentials a provider returns once (ComputeGPU marketplace rentals) are kept, encrypted, and
used by the connect proxy; a key rotation keeps old rows readable and seals them anew."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text

from broker import accounts, credentials
from broker.credentials import Sealer, SecretKeyInvalid
from broker.db import Database
from broker.rentals.tables import Rental
from providers.rental import Upstream
from providers.simulators.computegpu.rentals import SimRental
from tests.ownership.conftest import Broker

CHAT = {"model": "", "messages": [{"role": "user", "content": "hello"}], "stream": False}


def rent_listing(broker: Broker) -> tuple[dict[str, Any], SimRental]:
    offers = broker.api.get(
        "/v1/offers", params={"provider": "computegpu", "limit": 500, "gpu_count": 1}
    ).json()["data"]
    offer = next(
        o
        for o in offers
        if o["id"].startswith("computegpu:listing:")
        and broker.app.state.catalog.index.get(o["id"]).ref.get("ollama_models")
    )
    indexed = broker.app.state.catalog.index.get(offer["id"])
    listing_id = indexed.ref["listing_id"]
    model = indexed.ref["ollama_models"].split(",")[0]
    rental = broker.rent(offer["id"], {"mode": "model", "model": model})
    broker.wait_status(rental["id"], "running")
    state = broker.sims["computegpu"].server.app.state.sim  # type: ignore[attr-defined]
    [sim_rental] = [r for r in state.book.rentals.values() if r.listing.id == listing_id]
    return {**rental, "model": model}, sim_rental


def raw_sealed(db: Database, rental_id: str) -> str | None:
    with db.engine.connect() as connection:
        value = connection.execute(
            text("SELECT upstream_sealed FROM rentals WHERE id = :id"), {"id": rental_id}
        ).scalar_one()
    return value  # type: ignore[no-any-return]


def chat(broker: Broker, rental: dict[str, Any]) -> httpx.Response:
    """Ask the rental's Ollama model for a reply through the broker's connect route."""
    return broker.api.post(
        f"/v1/rentals/{rental['id']}/connect/api/chat",
        json={**CHAT, "model": rental["model"]},
        headers=broker.headers,
    )


def test_a_listing_rental_is_reached_through_the_proxy_with_its_kept_key(
    make_broker: Callable[..., Broker],
) -> None:
    broker = make_broker()
    rental, sim_rental = rent_listing(broker)

    answer = chat(broker, rental)

    assert answer.status_code == 200, answer.text
    assert answer.json()["message"]["content"]
    sealed = raw_sealed(broker.app.state.db, rental["id"])
    assert sealed is not None
    assert sim_rental.api_key not in sealed and sim_rental.id not in sealed
    shown = broker.api.get(f"/v1/rentals/{rental['id']}", headers=broker.headers).text
    assert sim_rental.api_key not in shown
    # The provider itself no longer tells: only the kept copy reaches the workload.
    adapter = broker.adapter("computegpu")
    with pytest.raises(Exception, match="only when it is rented"):
        adapter.upstream(f"listing:{sim_rental.id}")


def test_without_a_key_nothing_is_kept_and_startup_says_so(
    make_broker: Callable[..., Broker], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gpubroker.credentials"):
        broker = make_broker(secret_key=None)
    assert any(
        "GPUBROKER_SECRET_KEY is not set" in r.getMessage() and "computegpu" in r.getMessage()
        for r in caplog.records
    )
    rental, sim_rental = rent_listing(broker)

    answer = chat(broker, rental)

    assert answer.status_code == 409, answer.text
    assert raw_sealed(broker.app.state.db, rental["id"]) is None
    assert all(sim_rental.api_key not in r.getMessage() for r in caplog.records)


def test_rotation_old_rows_open_and_are_sealed_again_with_the_new_key(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    upstream = Upstream(
        "https://computegpu.test/api/v1/ollama/rnt_1", {"Authorization": "Bearer s3cr3t"}
    )
    with database.session() as session:
        account, _ = accounts.create_account(session, "rotation")
        session.add(
            Rental(
                id="rnt_rotate",
                account_id=account.id,
                request_hash="h",
                request={},
                rental_key_hash="k" * 64,
            )
        )
    with database.session() as session:
        credentials.store(session, Sealer([old]), "rnt_rotate", upstream)
    sealed_old = raw_sealed(database, "rnt_rotate")
    assert sealed_old is not None and "s3cr3t" not in sealed_old
    assert Fernet(old.encode()).decrypt(sealed_old.encode())

    rotated = Sealer.from_setting(SecretStr(f"{new},{old}"))
    assert credentials.stored_upstream(database, rotated, "rnt_rotate") == upstream

    sealed_new = raw_sealed(database, "rnt_rotate")
    assert sealed_new is not None and sealed_new != sealed_old
    assert Fernet(new.encode()).decrypt(sealed_new.encode())  # sealed again with the new key
    assert credentials.stored_upstream(database, Sealer([new]), "rnt_rotate") == upstream
    with caplog.at_level(logging.ERROR, logger="gpubroker.credentials"):
        assert credentials.stored_upstream(database, Sealer([old]), "rnt_rotate") is None
    assert "rnt_rotate" in caplog.text and "s3cr3t" not in caplog.text
    assert "s3cr3t" not in repr(upstream)


def test_a_key_that_is_not_fernet_is_refused_plainly() -> None:
    with pytest.raises(SecretKeyInvalid, match="Fernet keys"):
        Sealer.from_setting(SecretStr("not-a-key"))
    assert Sealer.from_setting(None) is None
    assert Sealer.from_setting(SecretStr("  ")) is None
