"""A rental as `POST /v1/rentals` and `GET /v1/rentals/{id}` show it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from broker.schemas import Body, Money, Page

RentalStatus = Literal["provisioning", "running", "stopped", "interrupted", "terminated", "failed"]


class Attempt(Body):
    provider: str | None = None
    offer_id: str | None = None
    error: str
    message: str | None = None


class LimitsLeft(Body):
    """What is left of each spending limit (None: no such limit)."""

    max_duration_seconds: int | None = None
    max_cost: Money | None = None
    idle_timeout_seconds: int | None = None


class Rental(Body):
    id: str
    object: Literal["rental"] = "rental"
    status: RentalStatus
    provider: str | None = None
    offer_id: str | None = None
    gpu: str | None = None
    gpu_count: int = 1
    tier: str | None = None
    region: str | None = None
    price_per_hour: Money
    hold: Money | None = None
    cost: Money | None = None
    billed_seconds: float | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    connect_url: str
    recover: Any = None
    interruptions: int | None = None
    reason: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ssh: dict[str, Any] | None = None
    rental_key: str | None = None
    max_duration_seconds: int | None = None
    max_cost: Money | None = None
    idle_timeout_seconds: int | None = None
    last_activity_at: datetime | None = None
    limits_left: LimitsLeft | None = None


class RentalPage(Page[Rental]):
    """The account's rentals, newest first."""
