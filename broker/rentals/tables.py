"""Rental rows, and the record of spot interruptions that feeds observed interruption rates.

A rental keeps everything billing needs to be exact and resumable after a restart: the price,
the hold it bills against, whole seconds billed so far and up to when, and what was charged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from broker.ledger_tables import new_id
from broker.rentals.lifecycle import LIVE, RentalStatus
from pricing.dbtypes import BigIntPK, UTCDateTime, utcnow

LIVE_STATUSES = tuple(status.value for status in RentalStatus if status in LIVE)
RENTAL_STATUSES = tuple(status.value for status in RentalStatus)


def _when(*, nullable: bool = True) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


def serial_key() -> Any:
    """An auto-incrementing BIGINT primary key (INTEGER on SQLite); None until inserted."""
    return Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))


class Rental(SQLModel, table=True):
    """One rental: what was asked, where it runs, and how far it has been billed."""

    __tablename__ = "rentals"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key", name="uq_rentals_idempotency"),
        Index("ix_rentals_status", "status"),
        Index("ix_rentals_account_created", "account_id", "created_at"),
        Index("ix_rentals_provider_handle", "provider", "handle"),
    )

    id: str = Field(default_factory=lambda: new_id("rnt"), primary_key=True, max_length=40)
    account_id: str = Field(sa_column=Column(String(40), ForeignKey("accounts.id"), nullable=False))
    status: str = Field(default="provisioning", max_length=16)
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str = Field(max_length=64)
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    recover: bool = False
    rental_key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # Where it runs (the current placement; a spot recovery moves it).
    provider: str | None = Field(default=None, max_length=40)
    offer_id: str | None = Field(default=None, max_length=300)
    handle: str | None = Field(default=None, max_length=300)
    gpu: str | None = Field(default=None, max_length=80)
    gpu_count: int = 1
    tier: str | None = Field(default=None, max_length=16)
    region: str | None = Field(default=None, max_length=120)
    price_per_hour: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    attempts: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    ssh: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Money: the hold it bills against, whole seconds billed and the moment they reach.
    hold_id: str | None = Field(
        default=None, sa_column=Column(String(40), ForeignKey("holds.id"), nullable=True)
    )
    billed_seconds: int = 0  # of the current placement
    billed_until: datetime | None = Field(default=None, sa_column=_when())
    charged: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # Earlier placements (before a spot recovery), each billed at its own price.
    earlier_seconds: int = 0
    earlier_charged: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_seen_running_at: datetime | None = Field(default=None, sa_column=_when())
    # Spending limits (broker.rentals.limits): None where not asked for.
    max_duration_seconds: int | None = None
    max_cost: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    idle_timeout_seconds: int | None = None
    last_activity_at: datetime | None = Field(default=None, sa_column=_when())
    running_since: datetime | None = Field(default=None, sa_column=_when())
    interruptions: int = 0
    reason: str | None = Field(default=None, max_length=500)
    # A start, stop or terminate whose provider call is under way (see rentals.lifecycle).
    action: str | None = Field(default=None, max_length=16)
    action_at: datetime | None = Field(default=None, sa_column=_when())
    # The current placement's workload credentials where the provider gives them only once,
    # Fernet-encrypted (broker.credentials); never shown, logged or returned.
    upstream_sealed: str | None = Field(
        default=None, sa_column=Column(Text, nullable=True), repr=False
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=_when())
    ended_at: datetime | None = Field(default=None, sa_column=_when())


class SpotObservation(SQLModel, table=True):
    """Hours one spot placement ran and whether it ended in an interruption."""

    __tablename__ = "spot_observations"
    __table_args__ = (Index("ix_spot_observations_provider_gpu", "provider", "gpu"),)

    id: int | None = serial_key()
    rental_id: str = Field(max_length=40)
    provider: str = Field(max_length=40)
    gpu: str = Field(max_length=80)
    seconds: int = 0
    interrupted: bool = False
    at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))


class Deployment(SQLModel, table=True):
    """The one row naming this broker deployment: the id it tags its instances with."""

    __tablename__ = "deployment"

    id: int = Field(default=1, primary_key=True)
    deployment_id: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))


class Placement(SQLModel, table=True):
    """One provision call, written before the provider is asked: an `outcome` still None long
    after `started_at` names the provider and offer where an orphan may be running."""

    __tablename__ = "placements"
    __table_args__ = (
        Index("ix_placements_rental", "rental_id"),
        Index("ix_placements_open", "outcome", "started_at"),
        Index("ix_placements_provider_handle", "provider", "handle"),
    )

    id: int | None = serial_key()
    rental_id: str = Field(max_length=40)
    provider: str = Field(max_length=40)
    offer_id: str = Field(max_length=300)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))
    outcome: str | None = Field(default=None, max_length=16)  # placed | refused | interrupted
    handle: str | None = Field(default=None, max_length=300)
    finished_at: datetime | None = Field(default=None, sa_column=_when())


class ReconcileRun(SQLModel, table=True):
    """What one reconciliation pass found and did, for the operator (any replica reads it)."""

    __tablename__ = "reconcile_runs"
    __table_args__ = (Index("ix_reconcile_runs_started", "started_at"),)

    id: int | None = serial_key()
    deployment_id: str = Field(max_length=40)
    started_at: datetime = Field(sa_column=_when(nullable=False))
    finished_at: datetime = Field(sa_column=_when(nullable=False))
    findings: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
