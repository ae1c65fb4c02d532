"""Accounts and API keys: issue, rotate, revoke; 401 for anything but a live key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from broker.accounts import hash_key
from broker.db import Database
from broker.ledger_tables import ApiKey
from tests.ledger.conftest import AdminPost, NewAccount


def _assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert error["message"]


def test_creating_an_account_returns_its_key_once_and_stores_only_a_hash(
    client: TestClient, admin_headers: dict[str, str], database: Database
) -> None:
    response = client.post("/v1/admin/accounts", json={"name": "acme"}, headers=admin_headers)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"account_id", "name", "key_id", "api_key"}
    assert body["name"] == "acme" and body["api_key"].startswith("gbk_")
    assert len(body["api_key"]) >= 40

    with database.session(read_only=True) as session:
        rows = session.exec(select(ApiKey).where(ApiKey.account_id == body["account_id"])).all()
    assert len(rows) == 1
    stored = rows[0].model_dump()
    assert body["api_key"] not in [str(value) for value in stored.values()]
    assert stored["key_hash"] == hash_key(body["api_key"])

    shown = client.get(f"/v1/admin/accounts/{body['account_id']}", headers=admin_headers)
    assert body["api_key"] not in shown.text
    assert client.get("/v1/wallet", headers={"Authorization": f"Bearer {body['api_key']}"}).json()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer gbk_not-a-real-key"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "gbk_missing-scheme"},
    ],
)
def test_missing_or_wrong_keys_are_401(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/v1/wallet", "/v1/wallet/ledger"):
        response = client.get(path, headers=headers)
        _assert_unauthorized(response)
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_is_401_and_the_others_keep_working(
    client: TestClient, admin_headers: dict[str, str], new_account: NewAccount
) -> None:
    account = new_account()
    base = f"/v1/admin/accounts/{account['account_id']}/keys"
    second = client.post(base, headers=admin_headers)
    assert second.status_code == 201
    second_key = second.json()["api_key"]

    revoked = client.delete(f"{base}/{account['key_id']}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    _assert_unauthorized(client.get("/v1/wallet", headers=account["headers"]))
    assert client.get("/v1/wallet", headers={"Authorization": f"Bearer {second_key}"}).is_success
    again = client.delete(f"{base}/{account['key_id']}", headers=admin_headers)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert client.delete(f"{base}/key_unknown", headers=admin_headers).status_code == 404


def test_rotation_issues_a_new_key_and_revokes_the_old_together(
    client: TestClient,
    admin_headers: dict[str, str],
    admin_post: AdminPost,
    new_account: NewAccount,
) -> None:
    account = new_account()
    rotated = admin_post(account, "keys", {"replaces": account["key_id"]})
    assert rotated.status_code == 201
    new_key = rotated.json()["api_key"]
    _assert_unauthorized(client.get("/v1/wallet", headers=account["headers"]))
    assert client.get("/v1/wallet", headers={"Authorization": f"Bearer {new_key}"}).is_success
    keys = client.get(f"/v1/admin/accounts/{account['account_id']}", headers=admin_headers)
    assert [k["revoked_at"] is None for k in keys.json()["keys"]] == [False, True]


def test_a_key_of_one_account_cannot_be_revoked_through_another(
    client: TestClient, admin_headers: dict[str, str], new_account: NewAccount
) -> None:
    alice, bob = new_account("alice"), new_account("bob")
    response = client.delete(
        f"/v1/admin/accounts/{bob['account_id']}/keys/{alice['key_id']}", headers=admin_headers
    )
    assert response.status_code == 404
    assert client.get("/v1/wallet", headers=alice["headers"]).is_success


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/admin/accounts", {"name": "x"}),
        ("GET", "/v1/admin/accounts/{id}", None),
        ("POST", "/v1/admin/accounts/{id}/keys", None),
        ("POST", "/v1/admin/accounts/{id}/credits", {"amount": "10.00"}),
    ],
)
def test_admin_endpoints_refuse_account_keys_and_no_key(
    client: TestClient, new_account: NewAccount, method: str, path: str, body: Any
) -> None:
    account = new_account()
    url = path.format(id=account["account_id"])
    for headers in (account["headers"], {}, {"Authorization": "Bearer test-admin-kez"}):
        _assert_unauthorized(client.request(method, url, json=body, headers=headers))
    assert client.get("/v1/wallet", headers=account["headers"]).json()["balance"] == "0.000000"


def test_unknown_accounts_are_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    for method, path, body in [
        ("GET", "/v1/admin/accounts/acct_nope", None),
        ("POST", "/v1/admin/accounts/acct_nope/keys", None),
        ("POST", "/v1/admin/accounts/acct_nope/credits", {"amount": "1.00"}),
    ]:
        response = client.request(method, path, json=body, headers=admin_headers)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_account_names_are_validated(
    client: TestClient, admin_headers: dict[str, str], name: str
) -> None:
    response = client.post("/v1/admin/accounts", json={"name": name}, headers=admin_headers)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "name"


def test_without_an_operator_key_the_admin_api_is_closed(app: FastAPI, client: TestClient) -> None:
    app.state.settings = app.state.settings.model_copy(update={"admin_key": None})
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        response = client.post("/v1/admin/accounts", json={"name": "x"}, headers=headers)
        _assert_unauthorized(response)
    assert "GPUBROKER_ADMIN_KEY" in response.json()["error"]["message"]
