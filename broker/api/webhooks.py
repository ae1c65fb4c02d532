"""Webhooks (account key): register endpoints, list and remove them, send a test event and read
the delivery log. Delivery itself happens in the background (`broker.webhooks.delivery`): no
route here waits on a receiver.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from broker.api.openapi import errors
from broker.api.render import json_response
from broker.auth import current_account
from broker.ledger_tables import Account
from broker.schemas.account import (
    DeliveryPage,
    NewWebhook,
    WebhookDeleted,
    WebhookPage,
    WebhookTest,
)
from broker.webhooks.endpoints import Webhooks
from broker.webhooks.outbox import TEST_EVENT
from broker.webhooks.tables import WebhookAttempt, WebhookEndpoint

router = APIRouter(tags=["webhooks"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="https URL to POST events to")
    events: list[Annotated[str, Field(max_length=40)]] = Field(
        min_length=1, max_length=20, description='Event types wanted, or ["*"] for all.'
    )


def webhooks_of(request: Request) -> Webhooks:
    service: Webhooks = request.app.state.webhooks
    return service


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "object": "webhook",
        "url": endpoint.url,
        "events": endpoint.events,
        "created_at": endpoint.created_at,
    }


def attempt_json(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "event_id": attempt.event_id,
        "type": attempt.type,
        "attempt": attempt.attempt,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "gave_up": attempt.gave_up,
        "at": attempt.at,
    }


@router.post("/v1/webhooks", status_code=201, response_model=NewWebhook)
def create_webhook(
    request: Request, body: WebhookIn, account: Annotated[Account, Depends(current_account)]
) -> Response:
    """Register an endpoint; the answer carries its signing secret, shown this once."""
    created = webhooks_of(request).create(account.id, body.url, body.events)
    return json_response({**endpoint_json(created.endpoint), "secret": created.secret}, 201)


@router.get("/v1/webhooks", response_model=WebhookPage)
def list_webhooks(
    request: Request, account: Annotated[Account, Depends(current_account)]
) -> Response:
    endpoints = webhooks_of(request).endpoints(account.id)
    return json_response({"object": "list", "data": [endpoint_json(e) for e in endpoints]})


@router.delete("/v1/webhooks/{webhook_id}", response_model=WebhookDeleted, responses=errors(404))
def delete_webhook(
    request: Request, webhook_id: str, account: Annotated[Account, Depends(current_account)]
) -> Response:
    webhooks_of(request).delete(account.id, webhook_id)
    return json_response({"id": webhook_id, "object": "webhook", "deleted": True})


@router.post(
    "/v1/webhooks/{webhook_id}/test",
    status_code=202,
    response_model=WebhookTest,
    responses=errors(404),
)
def test_webhook(
    request: Request, webhook_id: str, account: Annotated[Account, Depends(current_account)]
) -> Response:
    """Queue a `webhook.test` event for this endpoint; its attempts show in the delivery log."""
    event_id = webhooks_of(request).test(account.id, webhook_id)
    return json_response({"event_id": event_id, "type": TEST_EVENT}, 202)


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, responses=errors(404)
)
def list_deliveries(
    request: Request,
    webhook_id: str,
    account: Annotated[Account, Depends(current_account)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Every delivery attempt to this endpoint, newest first."""
    attempts = webhooks_of(request).attempts(account.id, webhook_id, limit)
    return json_response({"object": "list", "data": [attempt_json(a) for a in attempts]})
