"""Stripe top-ups end to end: the real `stripe` library against the stand-in on loopback, the
webhook over real HTTP, and credit exactly once per PaymentIntent."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from broker import ledger
from broker.db import Database
from broker.ledger_tables import StripeEvent, Topup
from providers.simulators.kit import RunningServer
from providers.simulators.stripe import StripeStandin, deliver, signed_event

NewAccount = Callable[..., dict[str, Any]]
Pending = tuple[dict[str, Any], dict[str, Any]]  # an account, its pending top-up


def _topup(client: TestClient, headers: dict[str, str], amount: str = "25.00") -> dict[str, Any]:
    response = client.post("/v1/wallet/topups", json={"amount": amount}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def pending_topup(client: TestClient, new_account: NewAccount) -> Pending:
    """A new account and its pending 25.00 USD top-up."""
    account = new_account()
    return account, _topup(client, account["headers"])


@dataclass
class Webhook:
    """Deliveries to the broker's Stripe webhook, signed with the configured secret."""

    client: TestClient
    secret: str

    def send(self, event: dict[str, Any]) -> httpx.Response:
        payload, headers = signed_event(event, self.secret)
        return self.client.post("/v1/stripe/webhook", content=payload, headers=headers)


@pytest.fixture
def webhook(client: TestClient, webhook_secret: str) -> Webhook:
    return Webhook(client, webhook_secret)


def _balance(client: TestClient, headers: dict[str, str]) -> str:
    return client.get("/v1/wallet", headers=headers).json()["balance"]  # type: ignore[no-any-return]


def test_a_topup_creates_a_payment_intent_through_the_stripe_library(
    client: TestClient, new_account: NewAccount, standin: StripeStandin, database: Database
) -> None:
    account = new_account()
    topup = _topup(client, account["headers"], "25.00")

    assert topup["status"] == "pending"
    assert topup["amount"] == "25.000000"
    assert topup["client_secret"].startswith(topup["payment_intent_id"] + "_secret_")
    intent = standin.intents[topup["payment_intent_id"]]
    assert intent["amount"] == 2500 and intent["currency"] == "usd"
    assert intent["metadata"] == {"account_id": account["account_id"], "topup_id": topup["id"]}
    sent = [
        r for r in standin.create_requests if r["params"]["metadata"]["topup_id"] == topup["id"]
    ]
    assert [r["idempotency_key"] for r in sent] == [topup["id"]]
    with database.session(read_only=True) as session:
        row = session.get(Topup, topup["id"])
    assert row is not None and (row.status, row.payment_intent_id) == ("pending", intent["id"])
    assert _balance(client, account["headers"]) == "0.000000"


def test_the_idempotency_key_header_returns_the_same_topup(
    client: TestClient, new_account: NewAccount
) -> None:
    account = new_account()
    headers = {**account["headers"], "Idempotency-Key": "order-42"}
    first = client.post("/v1/wallet/topups", json={"amount": "10.00"}, headers=headers)
    again = client.post("/v1/wallet/topups", json={"amount": "10.00"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = client.post("/v1/wallet/topups", json={"amount": "11.00"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    fresh = _topup(client, account["headers"], "10.00")
    assert fresh["id"] != first.json()["id"]


@pytest.mark.parametrize("amount", ["4.99", "0", "-5", "5.001", "abc", 4.99, 0, -5, "", None])
def test_invalid_topup_amounts_are_422_naming_amount(
    client: TestClient, new_account: NewAccount, amount: object
) -> None:
    account = new_account()
    response = client.post("/v1/wallet/topups", json={"amount": amount}, headers=account["headers"])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["param"] == "amount"
    assert "amount" in error["message"]


def test_a_topup_stripe_could_not_take_is_502_and_a_retry_creates_one_intent(
    app: FastAPI, client: TestClient, new_account: NewAccount, standin: StripeStandin
) -> None:
    account = new_account()
    headers = {**account["headers"], "Idempotency-Key": "retry-me"}
    settings = app.state.settings
    app.state.settings = settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"})
    failed = client.post("/v1/wallet/topups", json={"amount": "7.00"}, headers=headers)
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "provider_error"

    app.state.settings = settings
    retried = client.post("/v1/wallet/topups", json={"amount": "7.00"}, headers=headers)
    assert retried.status_code == 201
    topup_id = retried.json()["id"]
    created = [r for r in standin.create_requests if r["idempotency_key"] == topup_id]
    assert len(created) == 1
    assert client.post("/v1/wallet/topups", json={"amount": "7.00"}, headers=headers).json() == (
        retried.json()
    )


def test_topups_and_webhooks_without_stripe_settings_are_503(
    app: FastAPI, client: TestClient, new_account: NewAccount
) -> None:
    account = new_account()
    app.state.settings = app.state.settings.model_copy(
        update={"stripe_api_key": None, "stripe_webhook_secret": None}
    )
    topup = client.post("/v1/wallet/topups", json={"amount": "7.00"}, headers=account["headers"])
    webhook = client.post("/v1/stripe/webhook", content=b"{}", headers={"Stripe-Signature": "x"})
    for response in (topup, webhook):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_configured"


def test_topups_need_an_account_key(client: TestClient) -> None:
    response = client.post("/v1/wallet/topups", json={"amount": "25.00"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("redelivery", ["same_event", "new_event_each_time"])
def test_one_payment_delivered_20_times_concurrently_credits_once(
    client: TestClient,
    live_server: RunningServer,
    new_account: NewAccount,
    standin: StripeStandin,
    database: Database,
    webhook_secret: str,
    redelivery: str,
) -> None:
    """Stripe redelivers one event; a replayed or second event for the same PaymentIntent is
    just as possible. Either way, over real HTTP and all at once, the money arrives once."""
    account = new_account()
    with httpx.Client(base_url=live_server.url, headers=account["headers"]) as http:
        created = http.post("/v1/wallet/topups", json={"amount": "25.00"})
    assert created.status_code == 201, created.text
    topup = created.json()
    standin.pay(topup["payment_intent_id"])
    first = standin.event(topup["payment_intent_id"])
    events = [first] + [
        first if redelivery == "same_event" else standin.event(topup["payment_intent_id"])
        for _ in range(19)
    ]
    barrier = threading.Barrier(len(events))

    def race(event: dict[str, Any]) -> str:
        barrier.wait()
        response = deliver(f"{live_server.url}/v1/stripe/webhook", event, webhook_secret)
        assert response.status_code == 200, response.text
        return str(response.json()["outcome"])

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        outcomes = Counter(pool.map(race, events))

    expected_repeat = "duplicate" if redelivery == "same_event" else "already_credited"
    assert outcomes == Counter({"credited": 1, expected_repeat: 19})
    assert _balance(client, account["headers"]) == "25.000000"
    with database.session(read_only=True) as session:
        row = session.get(Topup, topup["id"])
        entries = ledger.list_entries(session, account["account_id"], limit=10)
        ledger.check_invariants(session, account["account_id"])
    assert row is not None and (row.status, row.credited) == ("succeeded", 25_000_000)
    assert [(e.kind, e.amount, e.reference) for e in entries] == [
        ("topup", 25_000_000, topup["id"])
    ]
    again = deliver(f"{live_server.url}/v1/stripe/webhook", first, webhook_secret)
    assert again.json()["outcome"] == "duplicate"


def test_a_forged_or_missing_signature_is_400_and_credits_nothing(
    client: TestClient,
    pending_topup: Pending,
    standin: StripeStandin,
    webhook_secret: str,
) -> None:
    account, topup = pending_topup
    standin.pay(topup["payment_intent_id"])
    payload, headers = signed_event(standin.event(topup["payment_intent_id"]), "whsec_forged")
    forged = client.post("/v1/stripe/webhook", content=payload, headers=headers)
    unsigned = client.post(
        "/v1/stripe/webhook", content=payload, headers={"Content-Type": "application/json"}
    )
    tampered_payload = payload.replace(b'"amount_received":2500', b'"amount_received":9900')
    _, good_headers = signed_event(standin.event(topup["payment_intent_id"]), webhook_secret)
    tampered = client.post("/v1/stripe/webhook", content=tampered_payload, headers=good_headers)
    for response in (forged, unsigned, tampered):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_request", "Stripe-Signature")
    assert _balance(client, account["headers"]) == "0.000000"


def test_other_events_are_acknowledged_and_credit_nothing(
    webhook: Webhook, pending_topup: Pending, standin: StripeStandin, database: Database
) -> None:
    account, topup = pending_topup
    for event_type in ("payment_intent.created", "payment_intent.payment_failed"):
        response = webhook.send(standin.event(topup["payment_intent_id"], event_type))
        assert response.status_code == 200
        assert response.json()["outcome"] == "ignored"
    assert _balance(webhook.client, account["headers"]) == "0.000000"
    with database.session(read_only=True) as session:
        row = session.get(Topup, topup["id"])
    assert row is not None and row.status == "pending"


def test_a_payment_for_an_unknown_topup_is_logged_and_credits_nothing(
    webhook: Webhook, pending_topup: Pending, standin: StripeStandin, database: Database
) -> None:
    account, topup = pending_topup
    standin.pay(topup["payment_intent_id"])
    event = standin.event(topup["payment_intent_id"])
    event["data"]["object"]["metadata"] = {"account_id": account["account_id"], "topup_id": "x"}
    response = webhook.send(event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_topup"
    assert _balance(webhook.client, account["headers"]) == "0.000000"
    with database.session(read_only=True) as session:
        recorded = session.exec(select(StripeEvent).where(StripeEvent.id == event["id"])).all()
    assert len(recorded) == 1
