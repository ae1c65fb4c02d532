"""The account's wallet: balances, the ledger, and Stripe top-ups (account key)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, Field

from broker import ledger, topups
from broker.api import usd_amount
from broker.api.errors import invalid
from broker.api.openapi import errors
from broker.auth import current_account, get_app_settings, get_db
from broker.db import Database
from broker.ledger_tables import Account, LedgerEntry
from pricing.money import format_usd

if TYPE_CHECKING:
    from broker.settings import CoreSettings

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])

MIN_TOPUP = 5_000_000
MAX_TOPUP = 999_999_990_000  # Stripe's largest USD charge, 999,999.99
TopupAmount = Annotated[int, usd_amount(decimals=2, minimum=MIN_TOPUP, maximum=MAX_TOPUP)]


class Wallet(BaseModel):
    balance: str
    held: str
    available: str
    currency: Literal["USD"] = "USD"

    @classmethod
    def of(cls, balances: ledger.Balances) -> Wallet:
        return cls(
            balance=format_usd(balances.balance),
            held=format_usd(balances.held),
            available=format_usd(balances.available),
        )


class EntryOut(BaseModel):
    id: int
    kind: str
    amount: str
    balance_after: str
    held_after: str
    reference: str
    hold_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> EntryOut:
        return cls(
            id=entry.id or 0,
            kind=entry.kind,
            amount=format_usd(entry.amount),
            balance_after=format_usd(entry.balance_after),
            held_after=format_usd(entry.held_after),
            reference=entry.reference,
            hold_id=entry.hold_id,
            created_at=entry.created_at,
        )


class EntryPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[EntryOut]
    next_cursor: str | None


class TopupIn(BaseModel):
    amount: TopupAmount


class TopupOut(BaseModel):
    id: str
    amount: str
    currency: Literal["USD"] = "USD"
    status: str
    client_secret: str
    payment_intent_id: str | None
    checkout_url: str | None = Field(
        None, description="Where to pay, when the operator set GPUBROKER_STRIPE_CHECKOUT_URL"
    )
    created_at: datetime


def checkout_url(
    settings: CoreSettings, payment_intent_id: str | None, client_secret: str
) -> str | None:
    """The operator's checkout page for this PaymentIntent, if one is configured."""
    template = settings.stripe_checkout_url
    if not template or payment_intent_id is None:
        return None
    return template.replace("{payment_intent_id}", quote(payment_intent_id, safe="")).replace(
        "{client_secret}", quote(client_secret, safe="")
    )


@router.get("", response_model=Wallet, responses=errors(401))
def get_wallet(
    account: Account = Depends(current_account), db: Database = Depends(get_db)
) -> Wallet:
    with db.session(read_only=True) as session:
        return Wallet.of(ledger.balances(session, account.id))


@router.get("/ledger", response_model=EntryPage, responses=errors(401, 422))
def get_ledger(
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    account: Account = Depends(current_account),
    db: Database = Depends(get_db),
) -> EntryPage:
    """Entries newest first; pass `next_cursor` back as `cursor` for the next page."""
    before = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit() and int(cursor) < 2**63):
            raise invalid("cursor is not one this endpoint returned", param="cursor")
        before = int(cursor)
    with db.session(read_only=True) as session:
        rows = ledger.list_entries(session, account.id, limit=limit + 1, before=before)
    page = rows[:limit]
    more = len(rows) > limit
    return EntryPage(
        data=[EntryOut.of(row) for row in page],
        next_cursor=str(page[-1].id) if more else None,
    )


@router.post(
    "/topups",
    status_code=201,
    response_model=TopupOut,
    responses=errors(401, 409, 422, 502, 503),
)
def create_topup(
    body: TopupIn,
    idempotency_key: str | None = Header(None, min_length=1, max_length=255),
    account: Account = Depends(current_account),
    db: Database = Depends(get_db),
    settings: CoreSettings = Depends(get_app_settings),
) -> TopupOut:
    """A Stripe PaymentIntent for `amount`; the wallet is credited when it succeeds."""
    created = topups.create_topup(db, settings, account.id, body.amount, idempotency_key)
    topup = created.topup
    return TopupOut(
        id=topup.id,
        amount=format_usd(topup.amount),
        status=topup.status,
        client_secret=created.client_secret,
        payment_intent_id=topup.payment_intent_id,
        checkout_url=checkout_url(settings, topup.payment_intent_id, created.client_secret),
        created_at=topup.created_at,
    )
