"""The owner is told: each alert fraction crossed, the budget reached, credit under the
low-balance level, and a rental ended at a limit, each written once to the webhooks outbox in
the transaction of the charge (or the end) that caused it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from cryptography.fernet import Fernet
from sqlmodel import select

from broker.rentals.billing import cost_of, hold_for
from broker.webhooks.tables import WebhookEvent
from pricing.money import format_usd, to_micros
from tests.limits.conftest import Broker

PROVIDER = "empiriolabs"


def events(broker: Broker) -> list[WebhookEvent]:
    with broker.app.state.db.session(read_only=True) as session:
        rows = session.exec(
            select(WebhookEvent).where(WebhookEvent.account_id == broker.owner.id)
        ).all()
    return list(rows)


def subscribed(make_limited: Callable[..., Broker]) -> Broker:
    broker = make_limited(
        min_hold_seconds=600,
        secret_key=Fernet.generate_key().decode(),
        webhook_allow_private=True,
    )
    made = broker.api.post(
        "/v1/webhooks",
        json={"url": "https://127.0.0.1:9/hooks", "events": ["*"]},
        headers=broker.headers,
    )
    assert made.status_code == 201, made.text
    return broker


def test_budget_and_wallet_notices_are_sent_once(make_limited: Callable[..., Broker]) -> None:
    broker = subscribed(make_limited)
    price = to_micros(broker.offer(PROVIDER)["price_per_hour"])
    limit = hold_for(price, 600)
    settings = {"monthly_limit": format_usd(limit), "alert_at": ["0.5"], "low_balance": "99.99"}
    assert broker.api.put("/v1/budget", json=settings, headers=broker.headers).status_code == 200
    rental = broker.rent_limited(PROVIDER)

    broker.ticks_until_ended(rental["id"])

    sent = Counter(event.type for event in events(broker))
    assert sent["budget.alert"] == 1 and sent["budget.exceeded"] == 1
    assert sent["wallet.low_balance"] == 1
    [exceeded] = [e for e in events(broker) if e.type == "budget.exceeded"]
    assert to_micros(json.loads(exceeded.body)["data"]["spent"]) == limit


def test_a_rental_ended_at_its_limit_is_announced(make_limited: Callable[..., Broker]) -> None:
    broker = subscribed(make_limited)
    price = to_micros(broker.offer(PROVIDER)["price_per_hour"])
    rental = broker.rent_limited(PROVIDER, max_cost=format_usd(cost_of(price, 60)))

    broker.ticks_until_ended(rental["id"])

    [reached] = [e for e in events(broker) if e.type == "rental.limit_reached"]
    data = json.loads(reached.body)["data"]
    assert data["id"] == rental["id"] and data["limit"] == "max_cost"
    assert data["status"] == "terminated" and data["reason"] == "max_cost"
