"""Column shapes that several migrations create alike.

Every factory returns a NOT NULL column unless told `nullable=True`; money is BIGINT
micro-dollars and every timestamp is timezone-aware.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

ID_LENGTH = 40


def serial_id() -> sa.Column[Any]:
    """A 64-bit auto-incrementing primary key column (a plain INTEGER on SQLite, which only
    auto-increments that type)."""
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
        primary_key=True,
    )


def key(
    name: str = "id",
    *,
    nullable: bool = False,
    refers: str | None = None,
    primary: bool | None = None,
) -> sa.Column[Any]:
    """A generated string id: by default the table's own `id`, its primary key. Under another
    `name`, a column holding such an id: a reference to a row (`refers`: "table.column"), or the
    primary key itself where the table keeps one row per referenced row (`primary=True`)."""
    references = () if refers is None else (sa.ForeignKey(refers),)
    return sa.Column(
        name,
        sa.String(length=ID_LENGTH),
        *references,
        nullable=nullable,
        primary_key=name == "id" if primary is None else primary,
    )


def text(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def money(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def moment(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def whole(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """An integer count (seconds, attempts, GPUs)."""
    return sa.Column(name, sa.Integer(), nullable=nullable)


def flag(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Boolean(), nullable=False)


def document(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A JSON value."""
    return sa.Column(name, sa.JSON(), nullable=nullable)


def long_text(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """Unbounded text (an encrypted secret, a serialized body)."""
    return sa.Column(name, sa.Text(), nullable=nullable)


def nonnegative(table: str, column: str) -> sa.CheckConstraint:
    """CHECK that `column` of `table` never goes below zero."""
    return sa.CheckConstraint(f"{column} >= 0", name=f"ck_{table}_{column}_nonnegative")
