"""Column shapes that several migrations create alike."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def serial_id() -> sa.Column[Any]:
    """A 64-bit auto-incrementing primary key column (a plain INTEGER on SQLite, which only
    auto-increments that type)."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )
