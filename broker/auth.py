"""FastAPI dependencies for the database, settings and the two kinds of caller.

`current_account` resolves `Authorization: Bearer <account key>`; `require_admin` checks the
operator key (`GPUBROKER_ADMIN_KEY`) with a constant-time comparison. Both answer 401
`unauthorized` for a missing, wrong or revoked key, and neither ever logs the key.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from broker.accounts import account_for_key
from broker.api.errors import unauthorized
from broker.db import Database
from broker.ledger_tables import Account

if TYPE_CHECKING:
    from broker.settings import CoreSettings

log = logging.getLogger("gpubroker.auth")

# auto_error=False: a missing header gets our own 401 shape, not FastAPI's 403.
bearer_scheme = HTTPBearer(auto_error=False, description="An account key, or the operator key")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_app_settings(request: Request) -> CoreSettings:
    settings: CoreSettings = request.app.state.settings
    return settings


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    return credentials.credentials or None


def current_account(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    db: Database = Depends(get_db),
) -> Account:
    """The account whose live key authorizes this request.

    The returned row is detached: use it for its id and name; read balances through
    `broker.ledger`, which locks them.
    """
    secret = bearer_token(credentials)
    if secret is None:
        raise unauthorized()
    with db.session(read_only=True) as session:
        account = account_for_key(session, secret)
    if account is None:
        log.info("request refused: unknown or revoked account key")
        raise unauthorized("the API key is unknown or revoked")
    return account


def require_admin(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    settings: CoreSettings = Depends(get_app_settings),
) -> None:
    """Pass only with the operator key; account keys never open admin endpoints."""
    secret = bearer_token(credentials)
    expected = settings.admin_key.get_secret_value() if settings.admin_key else ""
    if not expected:
        raise unauthorized("the admin API is disabled: set GPUBROKER_ADMIN_KEY to enable it")
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        log.info("admin request refused: wrong or missing operator key")
        raise unauthorized("the operator key (GPUBROKER_ADMIN_KEY) is required")
