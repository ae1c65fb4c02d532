"""An account's own API keys: list them, issue or rotate one, revoke one (account key).

`POST /v1/keys {"replaces": key_id}` rotates: the new key is issued and the old one revoked in one
transaction, so there is never a moment with neither. The new secret is in that answer only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from broker import accounts
from broker.api.openapi import errors
from broker.api.params import text
from broker.auth import bearer_scheme, bearer_token, current_account, get_db
from broker.db import Database
from broker.ledger_tables import Account, ApiKey
from broker.schemas.account import ApiKeyInfo, KeyPage, NewApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class RotateIn(BaseModel):
    replaces: Annotated[str, text(100)] | None = Field(
        None, description="A key id of this account to revoke in the same transaction"
    )


def _current_hash(credentials: HTTPAuthorizationCredentials | None) -> str:
    return accounts.hash_key(bearer_token(credentials) or "")


def _info(row: ApiKey, current_hash: str) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        current=row.key_hash == current_hash,
    )


@router.get("", response_model=KeyPage)
def list_keys(
    account: Annotated[Account, Depends(current_account)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    db: Annotated[Database, Depends(get_db)],
) -> KeyPage:
    """The account's keys, oldest first; `current` marks the one making this request."""
    with db.session(read_only=True) as session:
        rows = accounts.list_keys(session, account.id)
    current = _current_hash(credentials)
    return KeyPage(data=[_info(row, current) for row in rows], next_cursor=None)


@router.post("", status_code=201, response_model=NewApiKey, responses=errors(404))
def issue_key(
    account: Annotated[Account, Depends(current_account)],
    db: Annotated[Database, Depends(get_db)],
    body: Annotated[RotateIn | None, Body()] = None,
) -> NewApiKey:
    """A new key; with `replaces`, that key is revoked at the same moment (rotation)."""
    with db.session() as session:
        if body is not None and body.replaces:
            accounts.revoke_key(session, account.id, body.replaces)
        issued = accounts.issue_key(session, account.id)
        row = issued.row
        return NewApiKey(
            key_id=row.id,
            created_at=row.created_at,
            revoked_at=None,
            current=False,
            api_key=issued.secret,
        )


@router.delete("/{key_id}", response_model=ApiKeyInfo, responses=errors(404))
def revoke_key(
    key_id: str,
    account: Annotated[Account, Depends(current_account)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    db: Annotated[Database, Depends(get_db)],
) -> ApiKeyInfo:
    """Revoke one of the account's keys (another account's key is a 404)."""
    with db.session() as session:
        row = accounts.revoke_key(session, account.id, key_id)
        return _info(row, _current_hash(credentials))
