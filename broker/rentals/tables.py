"""Rental rows, and the record of spot interruptions that feeds observed interruption rates.

A rental keeps everything billing needs to be exact and resumable after a restart: the price,
the hold it bills against, whole seconds billed so far and up to when, and what was charged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from broker.dbtypes import BigIntPK, UTCDateTime, utcnow
from broker.ledger_tables import new_id

LIVE_STATUSES = ("provisioning", "running", "stopped")
RENTAL_STATUSES = (*LIVE_STATUSES, "interrupted", "terminated", "failed")


def _when(*, nullable: bool = True) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


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
    request: dict = Field(sa_column=Column(JSON, nullable=False))  # type: ignore[type-arg]
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
    attempts: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # type: ignore[type-arg]
    ssh: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # type: ignore[type-arg]
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
    running_since: datetime | None = Field(default=None, sa_column=_when())
    interruptions: int = 0
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=_when())
    ended_at: datetime | None = Field(default=None, sa_column=_when())


class SpotObservation(SQLModel, table=True):
    """Hours one spot placement ran and whether it ended in an interruption."""

    __tablename__ = "spot_observations"
    __table_args__ = (Index("ix_spot_observations_provider_gpu", "provider", "gpu"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True)
    )
    rental_id: str = Field(max_length=40)
    provider: str = Field(max_length=40)
    gpu: str = Field(max_length=80)
    seconds: int = 0
    interrupted: bool = False
    at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))
