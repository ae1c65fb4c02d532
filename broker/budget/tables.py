"""The monthly budget of an account, and which of its notices were already sent this month."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from pricing.dbtypes import UTCDateTime, utcnow


class Budget(SQLModel, table=True):
    """An account's spending cap for each calendar month (UTC) and when to tell its owner.

    `monthly_limit` and `low_balance` are micro-dollars (None: no cap, no low-balance notice);
    `alert_at` holds fractions of the limit as decimal strings ("0.5"). `notified_period` is the
    month (`2026-12`) that `notified` lists the notices already sent for, so each is sent once.
    """

    __tablename__ = "budgets"

    account_id: str = Field(
        sa_column=Column(String(40), ForeignKey("accounts.id"), primary_key=True)
    )
    monthly_limit: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    alert_at: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    low_balance: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    notified_period: str | None = Field(default=None, max_length=7)
    notified: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
