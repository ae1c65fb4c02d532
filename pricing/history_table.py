"""The price history's table: one row each time an offer's price changes.

It lives beside `pricing.history`, the only code that writes and queries it, so the catalog side
owns its storage and imports nothing from the broker; the broker's migrations register it with
the ledger's and the rentals' tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from pricing.dbtypes import BigIntPK, UTCDateTime


class PricePoint(SQLModel, table=True):
    """One offer's price at the moment it changed (or was first seen)."""

    __tablename__ = "price_points"
    __table_args__ = (
        Index("ix_price_points_gpu_at", "gpu", "at"),
        Index("ix_price_points_offer_at", "offer_id", "at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True)
    )
    offer_id: str = Field(max_length=300)
    provider: str = Field(max_length=40)
    gpu: str = Field(max_length=80)
    region: str = Field(max_length=120)
    tier: str = Field(max_length=16)
    price: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
