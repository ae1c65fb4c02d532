"""Webhook rows: the endpoints an account registered, the outbox of events, one delivery per
event and endpoint (the work queue the delivery job claims rows from), and every attempt made.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Text
from sqlmodel import Field, SQLModel

from broker.ledger_tables import new_id
from broker.rentals.tables import serial_key
from pricing.dbtypes import UTCDateTime, utcnow


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class WebhookEndpoint(SQLModel, table=True):
    """A URL an account wants events at, with the event types it wants and its signing secret
    (Fernet-sealed, `broker.credentials`: never shown again after creation)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_account", "account_id"),)

    id: str = Field(default_factory=lambda: new_id("whk"), primary_key=True, max_length=40)
    account_id: str = Field(sa_column=Column(String(40), ForeignKey("accounts.id"), nullable=False))
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class WebhookEvent(SQLModel, table=True):
    """One event, its body serialized once so every attempt sends (and signs) the same bytes.
    Its id is the `webhook-id` of every delivery of it."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_account", "account_id"),)

    id: str = Field(default_factory=lambda: new_id("msg"), primary_key=True, max_length=40)
    account_id: str = Field(max_length=40)
    type: str = Field(max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one endpoint: `pending` until answered with a 2xx (`delivered`) or the
    retry schedule is spent (`failed`). A replica claims it by setting `lease_until`; a lease
    that ran out (its replica died mid-delivery) may be claimed again."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id"),
    )

    id: int | None = serial_key()
    event_id: str = Field(
        sa_column=Column(String(40), ForeignKey("webhook_events.id"), nullable=False)
    )
    endpoint_id: str = Field(max_length=40)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    lease_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class WebhookAttempt(SQLModel, table=True):
    """What one delivery attempt got: a status code, or the error that stood in for one."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),)

    id: int | None = serial_key()
    endpoint_id: str = Field(max_length=40)
    event_id: str = Field(max_length=40)
    type: str = Field(max_length=40)
    attempt: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    gave_up: bool = False
    at: datetime = Field(default_factory=utcnow, sa_column=_when())
