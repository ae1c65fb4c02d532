"""The account's own objects: wallet, ledger, top-ups, budget, webhooks and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from broker.schemas import Body, Money, Page


class Wallet(Body):
    balance: Money
    held: Money
    available: Money
    currency: Literal["USD"] = "USD"


class LedgerEntry(Body):
    id: int
    kind: str
    amount: Money
    balance_after: Money
    held_after: Money
    reference: str
    hold_id: str | None = None
    created_at: datetime


class LedgerPage(Page[LedgerEntry]):
    """Ledger entries, newest first."""


class Topup(Body):
    id: str
    amount: Money
    currency: Literal["USD"] = "USD"
    status: str
    client_secret: str
    payment_intent_id: str | None = None
    checkout_url: str | None = None
    created_at: datetime


class Budget(Body):
    monthly_limit: Money | None = None
    spent: Money
    held: Money
    period_start: datetime
    period_end: datetime
    alert_at: list[Money] = Field(default_factory=list)
    low_balance: Money | None = None


class Webhook(Body):
    id: str
    url: str
    events: list[str]
    created_at: datetime | None = None


class NewWebhook(Webhook):
    secret: str


class WebhookPage(Page[Webhook]):
    """The account's webhooks."""


class Delivery(Body):
    event_id: str
    type: str
    attempt: int
    status_code: int | None = None
    error: str | None = None
    at: datetime
    gave_up: bool = False


class DeliveryPage(Page[Delivery]):
    """Delivery attempts to one webhook, newest first."""


class ApiKeyInfo(Body):
    key_id: str
    created_at: datetime
    revoked_at: datetime | None = None
    current: bool = False


class NewApiKey(ApiKeyInfo):
    api_key: str


class KeyPage(Page[ApiKeyInfo]):
    """The account's API keys, oldest first."""


class WebhookDeleted(Body):
    id: str
    object: Literal["webhook"] = "webhook"
    deleted: bool


class WebhookTest(Body):
    event_id: str
    type: str
