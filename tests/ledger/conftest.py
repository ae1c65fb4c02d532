"""Fixtures for the ledger tests: the app on both databases (`database_url`, in the root
conftest), the Stripe stand-in, and accounts made through the admin API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from broker import ledger
from broker.app import create_app
from broker.auth import current_account, get_db
from broker.db import Database
from broker.ledger_tables import Account
from broker.settings import CoreSettings
from providers.simulators.kit import RunningServer, serve_in_thread
from providers.simulators.stripe import StripeStandin

ADMIN_KEY = "test-admin-key"
WEBHOOK_SECRET = "whsec_test_" + "s" * 24
STRIPE_API_KEY = "sk_test_standin"


@pytest.fixture(scope="session")
def standin() -> StripeStandin:
    return StripeStandin()


@pytest.fixture(scope="session")
def standin_server(standin: StripeStandin) -> Iterator[RunningServer]:
    with serve_in_thread(standin.app) as server:
        yield server


@pytest.fixture
def webhook_secret() -> str:
    return WEBHOOK_SECRET


@pytest.fixture
def settings(
    make_settings: Callable[..., CoreSettings],
    database_url: str,
    standin_server: RunningServer,
    webhook_secret: str,
) -> CoreSettings:
    return make_settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        stripe_api_key=STRIPE_API_KEY,
        stripe_webhook_secret=webhook_secret,
        stripe_api_base=standin_server.url,
    )


class HoldIn(BaseModel):
    amount: int


def _test_holds_router() -> APIRouter:
    """A stand-in for the rentals router: places a hold with the caller's account key."""
    router = APIRouter()

    @router.post("/_test/holds", status_code=201)
    def place(
        body: HoldIn, account: Account = Depends(current_account), db: Database = Depends(get_db)
    ) -> dict[str, Any]:
        with db.session() as session:
            hold = ledger.place_hold(session, account.id, body.amount, ref="http-test")
        return {"hold_id": hold.id}

    return router


@pytest.fixture
def app(settings: CoreSettings) -> Iterator[FastAPI]:
    """The real application (no providers, no background jobs) plus the test holds route."""
    application = create_app(settings, adapters={}, start_jobs=False)
    application.include_router(_test_holds_router())
    yield application
    application.state.db.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[RunningServer]:
    """The app on a real uvicorn on loopback, for tests that need real concurrent HTTP."""
    with serve_in_thread(app) as server:
        yield server


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


NewAccount = Callable[..., dict[str, Any]]


AdminPost = Callable[[dict[str, Any], str, dict[str, Any]], httpx.Response]


@pytest.fixture
def admin_post(client: TestClient, admin_headers: dict[str, str]) -> AdminPost:
    """POST `body` as the operator to `/v1/admin/accounts/{id}/{what}` for `account`."""

    def post(account: dict[str, Any], what: str, body: dict[str, Any]) -> httpx.Response:
        return client.post(
            f"/v1/admin/accounts/{account['account_id']}/{what}", json=body, headers=admin_headers
        )

    return post


def assert_wallet(
    client: TestClient, headers: dict[str, str], balance: str, held: str, available: str
) -> None:
    """The wallet behind `headers` shows exactly these amounts, in USD."""
    wallet = client.get("/v1/wallet", headers=headers).json()
    assert wallet == {"balance": balance, "held": held, "available": available, "currency": "USD"}


@pytest.fixture
def new_account(
    client: TestClient, admin_headers: dict[str, str], admin_post: AdminPost
) -> NewAccount:
    """Create an account through the admin API, optionally granted `credit` USD; returns the
    creation response plus `headers` carrying its key."""

    def create(name: str = "acme", credit: str | None = None) -> dict[str, Any]:
        response = client.post("/v1/admin/accounts", json={"name": name}, headers=admin_headers)
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()
        if credit is not None:
            granted = admin_post(account, "credits", {"amount": credit, "reason": "test credit"})
            assert granted.status_code == 201, granted.text
        account["headers"] = {"Authorization": f"Bearer {account['api_key']}"}
        return account

    return create
