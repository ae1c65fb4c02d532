"""Accounts and their API keys.

A key is `gbk_` + 32 random bytes (URL-safe base64): with 256 bits of entropy a plain SHA-256 is
the right storage (no salt or slow hash is needed against guessing), and lookup is an equality
match on the indexed, unique hash column, so the time it takes does not depend on how much of a
guessed key is right. The secret itself is returned once, at creation, and never stored or logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select

from broker.domain_errors import NotFound
from broker.ledger_tables import Account, ApiKey
from pricing.dbtypes import utcnow

KEY_PREFIX = "gbk_"


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued key: the stored row and the secret, which exists only here."""

    row: ApiKey
    secret: str


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def get_account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}")
    return account


def issue_key(session: Session, account_id: str) -> IssuedKey:
    """A new key for an existing account; its other keys keep working."""
    get_account(session, account_id)
    secret = generate_key()
    row = ApiKey(account_id=account_id, key_hash=hash_key(secret))
    session.add(row)
    session.flush()
    return IssuedKey(row=row, secret=secret)


def create_account(session: Session, name: str) -> tuple[Account, IssuedKey]:
    """An account with zero balance and its first key."""
    account = Account(name=name)
    session.add(account)
    session.flush()
    return account, issue_key(session, account.id)


def revoke_key(session: Session, account_id: str, key_id: str) -> ApiKey:
    """Revoke one key of the account; revoking a revoked key changes nothing."""
    row = session.get(ApiKey, key_id)
    if row is None or row.account_id != account_id:
        raise NotFound(f"account {account_id} has no key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def list_keys(session: Session, account_id: str) -> list[ApiKey]:
    statement = (
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(col(ApiKey.created_at))
    )
    return list(session.exec(statement))


def account_for_key(session: Session, secret: str) -> Account | None:
    """The account a live key belongs to, or None for an unknown or revoked key."""
    statement = (
        select(Account)
        .join(ApiKey, col(ApiKey.account_id) == col(Account.id))
        .where(ApiKey.key_hash == hash_key(secret), col(ApiKey.revoked_at).is_(None))
    )
    return session.exec(statement).first()
