"""Column types that behave the same on SQLite and PostgreSQL.

Every table of the service uses them: the price history here in `pricing`, the ledger and the
rentals in the broker. They sit at the bottom of the layers so that all of them can.

SQLModel builds each table model's Core `Table` when the class is created but leaves `__table__`
out of its type declarations; `table_of` reaches the same object through SQLAlchemy's mapper,
typed, for the hot paths that issue Core statements rather than go through the ORM.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, Table, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out, whatever the backend stores.

    SQLite keeps no offset and hands back naive values; this type stores UTC and reattaches it,
    so comparisons never mix naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A 64-bit autoincrementing key; SQLite only autoincrements a column declared INTEGER.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def table_of(model: type[SQLModel]) -> Table:
    """The Core table a `table=True` model maps to (the object SQLModel stores as `__table__`)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a single table")
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)
