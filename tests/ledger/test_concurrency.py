"""Races against the ledger from separate connections: money is never created or destroyed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import select

from broker import ledger
from broker.db import Database
from broker.ledger_tables import Account, Hold
from providers.simulators.kit import RunningServer
from tests.ledger.conftest import assert_wallet
from tests.replicas.conftest import in_parallel

HOLD = 1_000_000  # 1 USD
RACERS = 200
FITS = 50


def _race(attempts: Sequence[Callable[[], str]]) -> Counter[str]:
    """Run each attempt in its own thread, all released at the same moment; count outcomes."""
    return Counter(in_parallel(attempts))


def _funded_account(db: Database, credit: int) -> str:
    with db.session() as session:
        account = Account(name="race")
        session.add(account)
        session.flush()
        ledger.grant(session, account.id, credit, "race credit")
        return account.id


def test_concurrent_holds_never_overdraw(database: Database) -> None:
    for _round in range(3):
        account_id = _funded_account(database, FITS * HOLD)
        missing: list[int] = []

        def attempt(account_id: str = account_id, missing: list[int] = missing) -> str:
            try:
                with database.session() as session:
                    ledger.place_hold(session, account_id, HOLD, ref="race")
            except ledger.InsufficientCredit as refused:
                missing.append(refused.missing)
                return "refused"
            return "held"

        outcomes = _race([attempt] * RACERS)
        assert outcomes == Counter({"held": FITS, "refused": RACERS - FITS})
        assert set(missing) == {HOLD}
        with database.session(read_only=True) as session:
            state = ledger.check_invariants(session, account_id)
            open_holds = session.exec(
                select(Hold).where(Hold.account_id == account_id, Hold.status == "open")
            ).all()
        assert state == ledger.Balances(balance=FITS * HOLD, held=FITS * HOLD)
        assert state.available == 0
        assert len(open_holds) == FITS


def test_concurrent_holds_over_http_answer_402_with_the_missing_amount(
    client: TestClient, live_server: RunningServer, new_account: Callable[..., dict[str, Any]]
) -> None:
    account = new_account(credit="5.00")

    def attempt() -> str:
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post("/_test/holds", json={"amount": HOLD}, headers=account["headers"])
        if response.status_code == 402:
            error = response.json()["error"]
            assert error["code"] == "insufficient_credit"
            assert error["missing"] == "1.000000"
            assert "1.000000 USD more is needed" in error["message"]
        return str(response.status_code)

    assert _race([attempt] * 20) == Counter({"201": 5, "402": 15})
    assert_wallet(client, account["headers"], "5.000000", "5.000000", "0.000000")


def test_capture_and_release_of_one_hold_race_and_exactly_one_wins(database: Database) -> None:
    for _round in range(5):
        account_id = _funded_account(database, 10 * HOLD)
        with database.session() as session:
            hold_id = ledger.place_hold(session, account_id, 4 * HOLD, ref="race").id

        def resolve(how: str, hold_id: str = hold_id) -> str:
            try:
                with database.session() as session:
                    if how == "settle":
                        ledger.settle(session, hold_id, 3 * HOLD)
                    else:
                        ledger.release(session, hold_id)
            except ledger.HoldNotOpen:
                return "lost"
            return how

        outcomes = _race([partial(resolve, "settle"), partial(resolve, "release")] * 10)
        assert outcomes["lost"] == 19
        winner = next(how for how in outcomes if how != "lost")

        with database.session(read_only=True) as session:
            state = ledger.check_invariants(session, account_id)
            hold = session.get(Hold, hold_id)
            kinds = Counter(e.kind for e in ledger.list_entries(session, account_id, limit=50))
        assert hold is not None and hold.held == 0
        if winner == "settle":
            assert (hold.status, hold.captured) == ("captured", 3 * HOLD)
            assert state == ledger.Balances(7 * HOLD, 0)
            assert kinds == Counter({"grant": 1, "hold": 1, "charge": 1, "release": 1})
        else:
            assert (hold.status, hold.captured) == ("released", 0)
            assert state == ledger.Balances(10 * HOLD, 0)
            assert kinds == Counter({"grant": 1, "hold": 1, "release": 1})


def test_concurrent_charges_on_one_hold_all_land(database: Database) -> None:
    account_id = _funded_account(database, 100 * HOLD)
    with database.session() as session:
        hold_id = ledger.place_hold(session, account_id, 10 * HOLD, ref="meter").id

    def attempt() -> str:
        with database.session() as session:
            ledger.charge(session, hold_id, HOLD // 2)
        return "charged"

    assert _race([attempt] * 40) == Counter({"charged": 40})
    with database.session(read_only=True) as session:
        state = ledger.check_invariants(session, account_id)
        hold = session.get(Hold, hold_id)
    assert hold is not None and (hold.held, hold.captured) == (0, 20 * HOLD)
    assert state == ledger.Balances(80 * HOLD, 0)
