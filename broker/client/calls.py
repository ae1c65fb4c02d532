"""Every endpoint of the API as a `Call`: method, path, parameters and the model of its answer.

Each endpoint is described once, here, with the signature users call it with;
`broker.client.endpoints` turns every one into a method of both `Client` (blocking) and
`AsyncClient` (awaited), which differ only in how they send a call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Generic, Literal, TypedDict, TypeVar

from pydantic import BaseModel
from typing_extensions import Unpack

from broker.schemas import Body
from broker.schemas.account import (
    ApiKeyInfo,
    Budget,
    DeliveryPage,
    KeyPage,
    LedgerPage,
    NewApiKey,
    NewWebhook,
    Topup,
    Wallet,
    WebhookDeleted,
    WebhookPage,
    WebhookTest,
)
from broker.schemas.catalog import GpuPage, Offer, OfferPage, PricePage, SpotComparison
from broker.schemas.rentals import Rental, RentalPage

T = TypeVar("T", bound=BaseModel)
Answer = TypeVar("Answer", bound=BaseModel, covariant=True)
Amount = str | Decimal | int
RENT_TIMEOUT = 300.0  # a rent may try several providers in turn


class Where(TypedDict, total=False):
    """The filters the catalog and its price history share, and paging."""

    gpu: str | list[str]
    provider: str | list[str]
    region: str
    tier: Literal["on_demand", "spot"]
    limit: int
    cursor: str


class OfferFilters(Where, total=False):
    """The filters of `GET /v1/offers` (they stack)."""

    min_vram: float
    max_price: Amount
    gpu_count: int
    min_gpu_count: int
    max_interruption: float
    instance_type: Literal["container", "vm", "baremetal"]
    available: Literal["true", "false", "any"]
    slices: Literal["true", "only", "false"]
    model: str
    sort: str


class HistoryFilters(Where, total=False):
    """The filters of `GET /v1/spot-prices/history`: RFC 3339 times."""

    since: str
    until: str


class RentSpec(TypedDict, total=False):
    """What `POST /v1/rentals` takes besides `offer_id`: constraints, workload and limits."""

    gpu: str | list[str]
    gpu_count: int
    tier: Literal["on_demand", "spot", "any"]
    max_price: Amount
    region: str
    max_interruption: float
    providers: list[str]
    model: str
    mode: Literal["model", "template", "custom", "ssh"]
    image: str
    template: str
    ports: list[int]
    env: dict[str, str]
    ssh_key: str
    recover: bool | dict[str, Any]
    expected_price: Amount
    max_duration_seconds: int
    max_cost: Amount
    idle_timeout_seconds: int


class BudgetChanges(TypedDict, total=False):
    """What `PUT /v1/budget` sets; None clears a setting."""

    monthly_limit: Amount | None
    alert_at: list[Amount]
    low_balance: Amount | None


@dataclass(frozen=True)
class Call(Generic[Answer]):
    """One request and the model its answer parses into."""

    method: str
    path: str
    model: type[Answer]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = False  # safe to send again after a broken connection
    timeout: float | None = None

    def following(self, cursor: str | None) -> Call[Answer] | None:
        """The same request for the page after this one; None after the last page."""
        if cursor is None:
            return None
        return replace(self, params={**self.params, "cursor": cursor})


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """Drop unset values; money and other decimals travel as their exact text."""
    return {
        k: str(v) if isinstance(v, Decimal) else v
        for k, v in values.items()
        if v is not None and v != [] and v != {}
    }


def get(path: str, model: type[T], /, **params: Any) -> Call[T]:
    return Call("GET", path, model, params=clean(params), retry=True)


def post(path: str, model: type[T], body: Any = None) -> Call[T]:
    return Call("POST", path, model, json=body)


def idempotent(call: Call[T], key: str | None) -> Call[T]:
    """The call with an idempotency key (a fresh one unless given): safe to resend after a
    broken connection, since the broker answers the same key with the same result."""
    return replace(call, headers={"Idempotency-Key": key or f"cli-{uuid.uuid4()}"}, retry=True)


# The catalog (no key needed).
def offers(**filters: Unpack[OfferFilters]) -> Call[OfferPage]:
    """Matching offers, cheapest first (`GET /v1/offers`; the filters stack)."""
    return get("/v1/offers", OfferPage, **filters)


def offer(offer_id: str) -> Call[Offer]:
    return get(f"/v1/offers/{offer_id}", Offer)


def gpus() -> Call[GpuPage]:
    return get("/v1/gpus", GpuPage)


def spot_prices(gpu: str, region: str | None = None) -> Call[SpotComparison]:
    return get("/v1/spot-prices", SpotComparison, gpu=gpu, region=region)


def price_history(**filters: Unpack[HistoryFilters]) -> Call[PricePage]:
    return get("/v1/spot-prices/history", PricePage, **filters)


# Rentals.
def rent(
    offer_id: str | None = None, *, idempotency_key: str | None = None, **spec: Unpack[RentSpec]
) -> Call[Rental]:
    """Rent `offer_id`, or the best offer matching the constraints in `spec`. It carries an
    idempotency key (a fresh one unless given), so resending it after a broken connection
    returns the same rental instead of starting a second one."""
    call = post("/v1/rentals", Rental, clean({"offer_id": offer_id, **spec}))
    return replace(idempotent(call, idempotency_key), timeout=RENT_TIMEOUT)


def rentals(
    status: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call[RentalPage]:
    return get("/v1/rentals", RentalPage, status=status, limit=limit, cursor=cursor)


def rental(rental_id: str) -> Call[Rental]:
    return get(f"/v1/rentals/{rental_id}", Rental)


def stop(rental_id: str) -> Call[Rental]:
    return Call("POST", f"/v1/rentals/{rental_id}/stop", Rental, timeout=RENT_TIMEOUT)


def start(rental_id: str) -> Call[Rental]:
    return Call("POST", f"/v1/rentals/{rental_id}/start", Rental, timeout=RENT_TIMEOUT)


def terminate(rental_id: str) -> Call[Rental]:
    """End the rental for good; the answer carries its final `cost`."""
    return Call("DELETE", f"/v1/rentals/{rental_id}", Rental, retry=True)


# Credit.
def wallet() -> Call[Wallet]:
    return get("/v1/wallet", Wallet)


def ledger(limit: int | None = None, cursor: str | None = None) -> Call[LedgerPage]:
    return get("/v1/wallet/ledger", LedgerPage, limit=limit, cursor=cursor)


def topup(amount: Amount, idempotency_key: str | None = None) -> Call[Topup]:
    """A Stripe PaymentIntent for `amount` USD; the wallet is credited once it is paid."""
    return idempotent(post("/v1/wallet/topups", Topup, {"amount": str(amount)}), idempotency_key)


def budget() -> Call[Budget]:
    return get("/v1/budget", Budget)


def set_budget(**changes: Unpack[BudgetChanges]) -> Call[Budget]:
    """`PUT /v1/budget`: a None value clears that setting, an absent one leaves it."""
    body: dict[str, Any] = {}
    for name, value in changes.items():
        body[name] = [str(a) for a in value] if isinstance(value, list) else value
        if isinstance(value, Decimal | int):
            body[name] = str(value)
    return Call("PUT", "/v1/budget", Budget, json=body, retry=True)


# Webhooks.
def webhooks() -> Call[WebhookPage]:
    return get("/v1/webhooks", WebhookPage)


def add_webhook(url: str, events: list[str]) -> Call[NewWebhook]:
    """Register `url` for `events` (`["*"]`: all); the answer holds the secret, shown once."""
    return post("/v1/webhooks", NewWebhook, {"url": url, "events": events})


def remove_webhook(webhook_id: str) -> Call[WebhookDeleted]:
    return Call("DELETE", f"/v1/webhooks/{webhook_id}", WebhookDeleted, retry=True)


def test_webhook(webhook_id: str) -> Call[WebhookTest]:
    return post(f"/v1/webhooks/{webhook_id}/test", WebhookTest)


def deliveries(
    webhook_id: str, limit: int | None = None, cursor: str | None = None
) -> Call[DeliveryPage]:
    return get(f"/v1/webhooks/{webhook_id}/deliveries", DeliveryPage, limit=limit, cursor=cursor)


# The account's own keys.
def keys() -> Call[KeyPage]:
    return get("/v1/keys", KeyPage)


def new_key(replaces: str | None = None) -> Call[NewApiKey]:
    """A new key; `replaces` revokes that key in the same step (rotation)."""
    return post("/v1/keys", NewApiKey, {"replaces": replaces} if replaces else None)


def revoke_key(key_id: str) -> Call[ApiKeyInfo]:
    return Call("DELETE", f"/v1/keys/{key_id}", ApiKeyInfo, retry=True)


# The operator (the client's key must be GPUBROKER_ADMIN_KEY).
def create_account(name: str) -> Call[Body]:
    return post("/v1/admin/accounts", Body, {"name": name})


def grant_credit(account_id: str, amount: Amount, reason: str = "") -> Call[Body]:
    body = {"amount": str(amount), "reason": reason}
    return post(f"/v1/admin/accounts/{account_id}/credits", Body, body)


def health() -> Call[Body]:
    return get("/healthz", Body)
