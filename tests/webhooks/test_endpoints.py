"""Registering webhooks: what is refused (bad input, private addresses without the setting),
and that one account never reaches another's webhooks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from broker.webhooks import guard
from tests.brokers import bearer, open_account
from tests.webhooks.conftest import Broker, Receiver


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "https://hooks.example.com/x", "events": ["rental.exploded"]}, "events"),
        ({"url": "https://hooks.example.com/x", "events": []}, "events"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "ftp://hooks.example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://", "events": ["*"]}, "url"),
        ({"url": 5, "events": ["*"]}, "url"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    make_broker: Callable[..., Broker], body: dict[str, object], param: str
) -> None:
    broker = make_broker()
    response = broker.post("/v1/webhooks", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://127.0.0.1/x",
        "https://localhost:8443/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:192.168.0.1]/x",
    ],
)
def test_private_addresses_are_refused_without_the_setting(
    make_broker: Callable[..., Broker], url: str
) -> None:
    broker = make_broker(webhook_allow_private=False)
    response = broker.post("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "url"


def test_a_public_address_is_accepted() -> None:
    assert guard.check_registration("https://93.184.215.14/hook", allow_private=False)
    target = guard.target("https://93.184.215.14:8443/hook", allow_private=False)
    assert target.url == "https://93.184.215.14:8443/hook"


def test_the_address_is_checked_again_at_delivery(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    permissive = make_broker()
    hook = permissive.add_webhook(receiver, ["*"])
    permissive.post(f"/v1/webhooks/{hook['id']}/test")
    # The same database, served by a broker that does not allow private addresses.
    strict = make_broker(webhook_allow_private=False)
    assert strict.deliver() == 1
    assert receiver.received == []
    (attempt,) = permissive.deliveries(hook["id"])
    assert attempt["status_code"] is None and attempt["error"].startswith("refused:")
    assert "private" in attempt["error"] or "https" in attempt["error"]


def test_another_accounts_webhooks_are_not_found(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker()
    hook = broker.add_webhook(receiver, ["*"])
    other = bearer(open_account(broker.client)["api_key"])
    base = f"/v1/webhooks/{hook['id']}"
    assert broker.client.get("/v1/webhooks", headers=other).json()["data"] == []
    assert broker.client.post(f"{base}/test", headers=other).status_code == 404
    assert broker.client.get(f"{base}/deliveries", headers=other).status_code == 404
    assert broker.client.delete(base, headers=other).status_code == 404
    assert broker.client.delete(base, headers=broker.headers).status_code == 200
    assert broker.get(f"{base}/deliveries").status_code == 404
    assert broker.get("/v1/webhooks").json()["data"] == []


def test_without_a_secret_key_no_webhook_is_made(
    make_broker: Callable[..., Broker], receiver: Receiver
) -> None:
    broker = make_broker(secret_key=None)
    response = broker.post("/v1/webhooks", {"url": receiver.url, "events": ["*"]})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "not_configured"
