"""No key, secret or provider credential appears in any log line, whatever the broker does.

Rents on three providers, proxied calls over HTTP and WebSocket with the rental key in the query
string (as browsers send it), with the account key and a wrong key, a Stripe top-up paid and
delivered by webhook, a key rotation, a revoked key's refusal and a termination: every line the
process logs (at DEBUG, every logger) and writes to its standard streams is then searched for
every secret it handled.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from broker.connect_lookup import BrokerLookup
from providers.registry import PROVIDERS
from providers.simulators.kit import RunningServer
from providers.simulators.stripe import StripeStandin, deliver
from tests.brokers import ADMIN
from tests.logs.conftest import STRIPE_API_KEY, WEBHOOK_SECRET, Captured
from tests.proxy.conftest import Broker


def secrets_handled(broker: Broker, rentals: list[dict[str, Any]]) -> set[str]:
    """Every secret of the run: keys, provider credentials (per rental too), Stripe's."""
    found = {STRIPE_API_KEY, WEBHOOK_SECRET, ADMIN["Authorization"].removeprefix("Bearer ")}
    found |= {spec.demo_api_key for spec in PROVIDERS.values() if spec.demo_api_key}
    found |= {rental["rental_key"] for rental in rentals}
    lookup = BrokerLookup(broker.app.state.db, broker.app.state.rentals.adapters)
    for rental in rentals:
        view = lookup.rental(rental["id"])
        upstream = lookup.upstream(view) if view is not None and view.status == "running" else None
        for value in upstream.headers.values() if upstream else ():
            found.add(value.rpartition(" ")[2])
    return found


def exercise(broker: Broker, standin: StripeStandin, caught: set[str]) -> list[dict[str, Any]]:
    owner = broker.owner
    caught |= {owner.key}
    rentals = [broker.rent(provider) for provider in ("empiriolabs", "computegpu", "aivory")]
    web = broker.rent("fluence")
    rentals.append(web)
    for rental in rentals[:3]:
        base = broker.connect_url(rental["id"])
        assert httpx.get(base + "v1/models", headers=broker.headers).status_code == 200
        key = rental["rental_key"]
        redirected = httpx.get(f"{base}v1/models?gpubroker_key={key}&x=1")
        assert redirected.status_code == 303
        posted = httpx.post(
            f"{base}v1/chat/completions?gpubroker_key={key}",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert posted.status_code < 500
    ws = broker.connect_url(web["id"]).replace("http://", "ws://") + "ws"
    with connect(f"{ws}?gpubroker_key={web['rental_key']}") as socket:
        socket.send("hello")
        assert socket.recv(timeout=10) == "hello"
    wrong = "gbk_" + "x" * 43
    caught.add(wrong)
    refused = httpx.get(broker.connect_url(rentals[0]["id"]) + f"v1/models?gpubroker_key={wrong}")
    assert refused.status_code == 401

    topup = broker.api.post("/v1/wallet/topups", json={"amount": "25.00"}, headers=broker.headers)
    assert topup.status_code == 201, topup.text
    caught.add(topup.json()["client_secret"])
    standin.pay(topup.json()["payment_intent_id"])
    delivered = deliver(
        f"{broker.url}/v1/stripe/webhook",
        standin.event(topup.json()["payment_intent_id"]),
        WEBHOOK_SECRET,
    )
    assert delivered.status_code == 200, delivered.text

    rotated = broker.api.post(
        f"/v1/admin/accounts/{owner.id}/keys", json={"replaces": owner.key_id}, headers=ADMIN
    )
    assert rotated.status_code == 201, rotated.text
    new_key = rotated.json()["api_key"]
    caught.add(new_key)
    base = broker.connect_url(rentals[0]["id"]) + "v1/models"
    assert httpx.get(base, headers=broker.headers).status_code == 401
    fresh = {"Authorization": f"Bearer {new_key}"}
    assert httpx.get(base, headers=fresh).status_code == 200
    ended = broker.api.delete(f"/v1/rentals/{rentals[1]['id']}", headers=fresh)
    assert ended.status_code == 200, ended.text
    return rentals


def test_no_secret_in_any_log_line(
    loud_broker: Broker,
    captured: Captured,
    standin: tuple[StripeStandin, RunningServer],
    capfd: pytest.CaptureFixture[str],
) -> None:
    caught: set[str] = set()
    rentals = exercise(loud_broker, standin[0], caught)
    caught |= secrets_handled(loud_broker, rentals)
    lines = captured.lines()
    out, err = capfd.readouterr()
    everything = lines + out.splitlines() + err.splitlines()

    leaks = [(secret, line) for secret in caught for line in everything if secret in line]
    assert leaks == []
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in records)
    # The capture saw what it had to: the WebSocket handshake (its query cut), proxied upstream
    # requests, and the rental lifecycle as structured events.
    messages = [r["message"] for r in records]
    assert any("WebSocket" in m and "?[redacted]" in m for m in messages), messages
    assert any(r["logger"] == "httpx" for r in records)
    events = {(r.get("event"), r.get("rental_id")) for r in records}
    for rental in rentals:
        assert ("rental.created", rental["id"]) in events
        assert ("rental.running", rental["id"]) in events
    assert ("rental.terminated", rentals[1]["id"]) in events
