"""The wallet and ledger endpoints: shapes, decimal strings, paging, operator grants."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from broker import ledger
from broker.db import Database
from tests.ledger.conftest import AdminPost, NewAccount, assert_wallet

DECIMAL = re.compile(r"^-?\d+\.\d{6}$")


def test_wallet_shape_and_decimal_strings(
    client: TestClient, new_account: NewAccount, database: Database
) -> None:
    account = new_account(credit="12.5")
    with database.session() as session:
        ledger.place_hold(session, account["account_id"], 2_250_001, ref="rnt_1")
    assert_wallet(client, account["headers"], "12.500000", "2.250001", "10.249999")


def test_ledger_entries_have_the_documented_shape(
    client: TestClient, new_account: NewAccount, database: Database
) -> None:
    account = new_account(credit="3")
    with database.session() as session:
        hold = ledger.place_hold(session, account["account_id"], 1_000_000, ref="rnt_9")
        ledger.charge(session, hold.id, 250_000)
    page = client.get("/v1/wallet/ledger", headers=account["headers"]).json()
    assert page["object"] == "list" and page["next_cursor"] is None
    charge, held, grant = page["data"]
    assert {
        "id",
        "kind",
        "amount",
        "balance_after",
        "held_after",
        "reference",
        "created_at",
    } <= set(charge)
    assert (charge["kind"], charge["amount"], charge["balance_after"], charge["held_after"]) == (
        "charge",
        "0.250000",
        "2.750000",
        "0.750000",
    )
    assert (held["kind"], held["reference"], held["hold_id"]) == ("hold", "rnt_9", hold.id)
    assert (grant["kind"], grant["amount"], grant["reference"]) == (
        "grant",
        "3.000000",
        "test credit",
    )
    for entry in page["data"]:
        assert all(DECIMAL.match(entry[k]) for k in ("amount", "balance_after", "held_after"))
        assert datetime.fromisoformat(entry["created_at"]).utcoffset() is not None


def test_paging_returns_each_entry_exactly_once_newest_first(
    client: TestClient, new_account: NewAccount, database: Database
) -> None:
    account = new_account(credit="100")
    with database.session() as session:
        for i in range(22):
            ledger.place_hold(session, account["account_id"], 1_000 + i, ref=f"rnt_{i}")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/wallet/ledger", params=params, headers=account["headers"]).json()
        assert len(page["data"]) <= 5
        seen.extend(entry["id"] for entry in page["data"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, reverse=True)
    everything = client.get("/v1/wallet/ledger?limit=500", headers=account["headers"]).json()
    assert [entry["id"] for entry in everything["data"]] == seen


def test_the_ledger_shows_only_the_callers_entries(
    client: TestClient, new_account: NewAccount
) -> None:
    alice, bob = new_account("alice", credit="1"), new_account("bob", credit="2")
    alice_page = client.get("/v1/wallet/ledger", headers=alice["headers"]).json()
    bob_page = client.get("/v1/wallet/ledger", headers=bob["headers"]).json()
    assert [e["amount"] for e in alice_page["data"]] == ["1.000000"]
    assert [e["amount"] for e in bob_page["data"]] == ["2.000000"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": "-1"}, "cursor"),
        ({"cursor": "9" * 30}, "cursor"),
    ],
)
def test_bad_paging_parameters_are_422(
    client: TestClient, new_account: NewAccount, params: dict[str, Any], param: str
) -> None:
    account = new_account()
    response = client.get("/v1/wallet/ledger", params=params, headers=account["headers"])
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)


def test_operator_grants_add_credit(
    client: TestClient, admin_post: AdminPost, new_account: NewAccount
) -> None:
    account = new_account()
    response = admin_post(account, "credits", {"amount": "10.123456", "reason": "welcome"})
    assert response.status_code == 201
    body = response.json()
    assert body["entry"]["kind"] == "grant" and body["entry"]["reference"] == "welcome"
    assert body["wallet"]["balance"] == "10.123456"
    assert client.get("/v1/wallet", headers=account["headers"]).json()["available"] == "10.123456"


@pytest.mark.parametrize("amount", ["0", "-1", "0.0000001", "abc", "NaN", "1e40", None])
def test_invalid_grants_are_422_naming_amount(
    client: TestClient, admin_post: AdminPost, new_account: NewAccount, amount: Any
) -> None:
    account = new_account()
    response = admin_post(account, "credits", {"amount": amount})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "amount"
    assert client.get("/v1/wallet", headers=account["headers"]).json()["balance"] == "0.000000"
