"""Operator endpoints: accounts, their keys, credit grants, and what reconciliation found
(operator key only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import col, select

from broker import accounts, ledger
from broker.api import usd_amount
from broker.api.openapi import errors
from broker.api.params import text
from broker.api.wallet import EntryOut, Wallet
from broker.auth import get_db, require_admin
from broker.db import Database
from broker.ledger_tables import ApiKey
from broker.rentals.tables import ReconcileRun

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=errors(401, 404, 409, 422),
)

MAX_GRANT = 1_000_000_000_000_000  # one billion USD: far from BIGINT's limit
GrantAmount = Annotated[int, usd_amount(decimals=6, minimum=1, maximum=MAX_GRANT)]


class AccountIn(BaseModel):
    name: Annotated[str, text(200)]


class KeyOut(BaseModel):
    key_id: str
    account_id: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls(
            key_id=row.id,
            account_id=row.account_id,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )


class NewKeyOut(KeyOut):
    api_key: str = Field(description="The secret; shown only in this response")

    @classmethod
    def issued(cls, issued: accounts.IssuedKey) -> NewKeyOut:
        return cls(**KeyOut.of(issued.row).model_dump(), api_key=issued.secret)


class NewAccountOut(BaseModel):
    account_id: str
    name: str
    key_id: str
    api_key: str = Field(description="The secret; shown only in this response")


class AccountOut(BaseModel):
    account_id: str
    name: str
    created_at: datetime
    wallet: Wallet
    keys: list[KeyOut]


class KeyIn(BaseModel):
    replaces: Annotated[str, text(100)] | None = Field(
        None, description="A key id to revoke in the same transaction (rotation)"
    )


class GrantIn(BaseModel):
    amount: GrantAmount
    reason: Annotated[str, text(300, min_length=0)] = ""


class GrantOut(BaseModel):
    entry: EntryOut
    wallet: Wallet


@router.post("/accounts", status_code=201, response_model=NewAccountOut)
def create_account(body: AccountIn, db: Database = Depends(get_db)) -> NewAccountOut:
    with db.session() as session:
        account, issued = accounts.create_account(session, body.name)
    return NewAccountOut(
        account_id=account.id, name=account.name, key_id=issued.row.id, api_key=issued.secret
    )


@router.get("/accounts/{account_id}", response_model=AccountOut)
def get_account(account_id: str, db: Database = Depends(get_db)) -> AccountOut:
    with db.session(read_only=True) as session:
        account = accounts.get_account(session, account_id)
        keys = accounts.list_keys(session, account_id)
    return AccountOut(
        account_id=account.id,
        name=account.name,
        created_at=account.created_at,
        wallet=Wallet.of(ledger.Balances(account.balance, account.held)),
        keys=[KeyOut.of(row) for row in keys],
    )


@router.post("/accounts/{account_id}/keys", status_code=201, response_model=NewKeyOut)
def issue_key(
    account_id: str, body: KeyIn | None = Body(None), db: Database = Depends(get_db)
) -> NewKeyOut:
    """A new key; with `replaces`, the old one is revoked at the same moment (rotation)."""
    with db.session() as session:
        if body is not None and body.replaces:
            accounts.revoke_key(session, account_id, body.replaces)
        issued = accounts.issue_key(session, account_id)
    return NewKeyOut.issued(issued)


@router.delete("/accounts/{account_id}/keys/{key_id}", response_model=KeyOut)
def revoke_key(account_id: str, key_id: str, db: Database = Depends(get_db)) -> KeyOut:
    with db.session() as session:
        row = accounts.revoke_key(session, account_id, key_id)
    return KeyOut.of(row)


@router.post("/accounts/{account_id}/credits", status_code=201, response_model=GrantOut)
def grant_credit(account_id: str, body: GrantIn, db: Database = Depends(get_db)) -> GrantOut:
    """Add credit to an account as a `grant` entry."""
    with db.session() as session:
        entry = ledger.grant(session, account_id, body.amount, body.reason)
    return GrantOut(
        entry=EntryOut.of(entry),
        wallet=Wallet.of(ledger.Balances(entry.balance_after, entry.held_after)),
    )


class ReconcileRunOut(BaseModel):
    """One reconciliation pass: how many of each finding, and the findings themselves."""

    id: int
    deployment_id: str
    started_at: datetime
    finished_at: datetime
    counts: dict[str, int]
    findings: dict[str, list[Any]]


class ReconciliationOut(BaseModel):
    deployment_id: str = Field(description="The id this broker tags its instances with")
    exclusive_providers: list[str] = Field(
        description="Providers whose untagged instances reconciliation may end"
    )
    data: list[ReconcileRunOut] = Field(description="The latest passes, newest first")


@router.get("/reconciliation", response_model=ReconciliationOut)
def reconciliation(
    request: Request,
    limit: int = Query(20, ge=1, le=200, description="How many of the latest passes"),
    db: Database = Depends(get_db),
) -> ReconciliationOut:
    """What reconciliation found and did, as recorded by whichever replica ran it: orphans
    terminated (or not), instances left alone because another deployment tagged them or because
    they are untagged on a shared account, placements cut short, rentals lost."""
    reconciler = request.app.state.reconciler
    with db.session(read_only=True) as session:
        rows = session.exec(
            select(ReconcileRun).order_by(col(ReconcileRun.id).desc()).limit(limit)
        ).all()
    return ReconciliationOut(
        deployment_id=reconciler.deployment,
        exclusive_providers=sorted(reconciler.exclusive),
        data=[
            ReconcileRunOut(
                id=row.id or 0,
                deployment_id=row.deployment_id,
                started_at=row.started_at,
                finished_at=row.finished_at,
                counts={kind: len(items) for kind, items in row.findings.items()},
                findings=row.findings,
            )
            for row in rows
        ],
    )
