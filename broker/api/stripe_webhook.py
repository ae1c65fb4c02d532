"""`POST /v1/stripe/webhook`: Stripe's deliveries, verified, then applied at most once.

The signature covers the exact bytes Stripe sent, so the raw body is read before anything parses
it. The database work runs in the thread pool: concurrent deliveries reach the database
concurrently and the ledger's locks and unique keys, not the event loop, keep them apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from broker import topups
from broker.api.openapi import errors
from broker.auth import get_app_settings, get_db
from broker.db import Database

if TYPE_CHECKING:
    from broker.settings import CoreSettings

router = APIRouter(tags=["stripe"])


class WebhookOut(BaseModel):
    received: bool = True
    outcome: topups.Outcome


@router.post("/v1/stripe/webhook", response_model=WebhookOut, responses=errors(400, 503))
async def stripe_webhook(
    request: Request,
    stripe_signature: str | None = Header(None),
    db: Database = Depends(get_db),
    settings: CoreSettings = Depends(get_app_settings),
) -> WebhookOut:
    payload = await request.body()
    event = topups.verify_event(settings, payload, stripe_signature)
    outcome = await run_in_threadpool(topups.apply_event, db, event)
    return WebhookOut(outcome=outcome)
