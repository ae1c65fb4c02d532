"""Tables for accounts, API keys, the credit ledger, holds and Stripe top-ups.

Amounts are integer micro-dollars in BIGINT columns. The CHECK constraints restate the ledger's
invariants (see `broker.ledger`) so the database itself refuses a row that would break them, even
from code that bypasses the ledger module.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from pricing.dbtypes import BigIntPK, UTCDateTime, utcnow

ENTRY_KINDS = ("topup", "grant", "hold", "release", "charge")
HOLD_STATUSES = ("open", "captured", "released")
TOPUP_STATUSES = ("pending", "succeeded")


def new_id(prefix: str) -> str:
    """A public identifier such as `acct_3f9c...`: random, so ids reveal no counts."""
    return f"{prefix}_{secrets.token_hex(10)}"


def _money(*, nullable: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Account(SQLModel, table=True):
    """A customer. `balance` and `held` cache the sums of its ledger entries."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("held >= 0", name="ck_accounts_held_nonnegative"),
        CheckConstraint("balance >= held", name="ck_accounts_available_nonnegative"),
    )

    id: str = Field(default_factory=lambda: new_id("acct"), primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    balance: int = Field(default=0, sa_column=_money())
    held: int = Field(default=0, sa_column=_money())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class ApiKey(SQLModel, table=True):
    """An account's key, stored only as the SHA-256 of the secret."""

    __tablename__ = "api_keys"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=40)
    account_id: str = Field(
        sa_column=Column(String(40), ForeignKey("accounts.id"), nullable=False, index=True)
    )
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    revoked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Hold(SQLModel, table=True):
    """Credit set aside for one purpose (a rental); resolved exactly once.

    `held` is what is still set aside; `captured` what has been charged against it so far.
    """

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("held >= 0", name="ck_holds_held_nonnegative"),
        CheckConstraint("captured >= 0", name="ck_holds_captured_nonnegative"),
        CheckConstraint(_in("status", HOLD_STATUSES), name="ck_holds_status"),
        CheckConstraint("status = 'open' OR held = 0", name="ck_holds_resolved_empty"),
    )

    id: str = Field(default_factory=lambda: new_id("hold"), primary_key=True, max_length=40)
    account_id: str = Field(
        sa_column=Column(String(40), ForeignKey("accounts.id"), nullable=False, index=True)
    )
    status: str = Field(default="open", max_length=16)
    held: int = Field(default=0, sa_column=_money())
    captured: int = Field(default=0, sa_column=_money())
    reference: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    resolved_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class LedgerEntry(SQLModel, table=True):
    """One movement of money; never updated or deleted.

    `amount` is positive; `kind` says which way it moves (see `broker.ledger.EFFECTS`).
    `dedupe_key`, where set, is unique: an external event (a Stripe PaymentIntent) can be
    entered at most once, whatever retries or races deliver it.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_ledger_entries_amount_positive"),
        CheckConstraint(_in("kind", ENTRY_KINDS), name="ck_ledger_entries_kind"),
        Index("ix_ledger_entries_account_id_id", "account_id", "id"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True)
    )
    account_id: str = Field(sa_column=Column(String(40), ForeignKey("accounts.id"), nullable=False))
    kind: str = Field(max_length=16)
    amount: int = Field(sa_column=_money())
    balance_after: int = Field(sa_column=_money())
    held_after: int = Field(sa_column=_money())
    hold_id: str | None = Field(
        default=None,
        sa_column=Column(String(40), ForeignKey("holds.id"), nullable=True, index=True),
    )
    reference: str = Field(default="", max_length=300)
    dedupe_key: str | None = Field(
        default=None, sa_column=Column(String(200), nullable=True, unique=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Topup(SQLModel, table=True):
    """A Stripe top-up: a PaymentIntent we created and, once it succeeds, the credit it gave."""

    __tablename__ = "topups"
    __table_args__ = (
        UniqueConstraint("account_id", "idempotency_key", name="uq_topups_account_idempotency"),
        CheckConstraint(_in("status", TOPUP_STATUSES), name="ck_topups_status"),
    )

    id: str = Field(default_factory=lambda: new_id("top"), primary_key=True, max_length=40)
    account_id: str = Field(
        sa_column=Column(String(40), ForeignKey("accounts.id"), nullable=False, index=True)
    )
    amount: int = Field(sa_column=_money())
    status: str = Field(default="pending", max_length=16)
    payment_intent_id: str | None = Field(
        default=None, sa_column=Column(String(255), nullable=True, unique=True)
    )
    idempotency_key: str | None = Field(default=None, max_length=255)
    credited: int | None = Field(default=None, sa_column=_money(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    succeeded_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class StripeEvent(SQLModel, table=True):
    """A Stripe webhook event already handled; a redelivery of the same event is a no-op."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    payment_intent_id: str | None = Field(default=None, max_length=255)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_when())
