"""The ledger primitives against a real database (each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from broker import ledger
from broker.db import Database
from broker.ledger_tables import Account, Hold, LedgerEntry


def _account(db: Database, credit: int = 0) -> str:
    with db.session() as session:
        account = Account(name="ledger-test")
        session.add(account)
        session.flush()
        if credit:
            ledger.grant(session, account.id, credit, "start")
        return account.id


def _hold(db: Database, account_id: str, amount: int) -> str:
    with db.session() as session:
        return ledger.place_hold(session, account_id, amount, ref="rnt_test").id


def _state(db: Database, account_id: str) -> ledger.Balances:
    with db.session(read_only=True) as session:
        return ledger.check_invariants(session, account_id)


def _hold_row(db: Database, hold_id: str) -> Hold:
    with db.session(read_only=True) as session:
        hold = session.get(Hold, hold_id)
        assert hold is not None
        return hold


def test_grant_hold_charge_settle_moves_money_as_documented(database: Database) -> None:
    account_id = _account(database, credit=10_000_000)
    hold_id = _hold(database, account_id, 3_000_000)
    assert _state(database, account_id) == ledger.Balances(10_000_000, 3_000_000)

    with database.session() as session:
        ledger.charge(session, hold_id, 1_000_000)
    assert _state(database, account_id) == ledger.Balances(9_000_000, 2_000_000)

    with database.session() as session:
        ledger.extend_hold(session, hold_id, 500_000)
    assert _state(database, account_id) == ledger.Balances(9_000_000, 2_500_000)

    with database.session() as session:
        hold = ledger.settle(session, hold_id, 1_200_000)
    assert (hold.status, hold.held, hold.captured) == ("captured", 0, 2_200_000)
    assert _state(database, account_id) == ledger.Balances(7_800_000, 0)

    with database.session(read_only=True) as session:
        kinds = [e.kind for e in reversed(ledger.list_entries(session, account_id, limit=10))]
    assert kinds == ["grant", "hold", "charge", "hold", "charge", "release"]


def test_release_gives_everything_back(database: Database) -> None:
    account_id = _account(database, credit=5_000_000)
    hold_id = _hold(database, account_id, 5_000_000)
    with database.session() as session:
        hold = ledger.release(session, hold_id)
    assert (hold.status, hold.held, hold.captured) == ("released", 0, 0)
    assert _state(database, account_id) == ledger.Balances(5_000_000, 0)


@pytest.mark.parametrize("first", ["settle", "release"])
@pytest.mark.parametrize("second", ["settle", "release", "charge", "extend"])
def test_a_hold_resolves_once_and_never_moves_money_again(
    database: Database, first: str, second: str
) -> None:
    account_id = _account(database, credit=5_000_000)
    hold_id = _hold(database, account_id, 2_000_000)
    with database.session() as session:
        if first == "settle":
            ledger.settle(session, hold_id, 700_000)
        else:
            ledger.release(session, hold_id)
    before = _state(database, account_id)

    with pytest.raises(ledger.HoldNotOpen), database.session() as session:
        if second == "settle":
            ledger.settle(session, hold_id, 700_000)
        elif second == "release":
            ledger.release(session, hold_id)
        elif second == "charge":
            ledger.charge(session, hold_id, 100)
        else:
            ledger.extend_hold(session, hold_id, 100)
    assert _state(database, account_id) == before


def test_insufficient_credit_writes_nothing(database: Database) -> None:
    account_id = _account(database, credit=1_000_000)
    hold_id = _hold(database, account_id, 800_000)
    with pytest.raises(ledger.InsufficientCredit) as refused, database.session() as session:
        ledger.place_hold(session, account_id, 300_000, ref="too much")
    assert refused.value.missing == 100_000
    with pytest.raises(ledger.InsufficientCredit), database.session() as session:
        ledger.extend_hold(session, hold_id, 200_001)
    with pytest.raises(ledger.InsufficientCredit), database.session() as session:
        ledger.charge(session, hold_id, 1_000_001)
    assert _state(database, account_id) == ledger.Balances(1_000_000, 800_000)
    assert _hold_row(database, hold_id).held == 800_000


def test_a_charge_beyond_the_hold_draws_on_available_credit(database: Database) -> None:
    account_id = _account(database, credit=1_000_000)
    hold_id = _hold(database, account_id, 100_000)
    with database.session() as session:
        ledger.charge(session, hold_id, 250_000)
    assert _state(database, account_id) == ledger.Balances(750_000, 0)
    hold = _hold_row(database, hold_id)
    assert (hold.status, hold.held, hold.captured) == ("open", 0, 250_000)


def test_unknown_account_and_hold_are_not_found(database: Database) -> None:
    with pytest.raises(ledger.UnknownAccount), database.session() as session:
        ledger.place_hold(session, "acct_missing", 1, ref="x")
    with pytest.raises(ledger.UnknownHold), database.session() as session:
        ledger.release(session, "hold_missing")


def test_a_topup_for_one_payment_intent_is_entered_once(database: Database) -> None:
    account_id = _account(database)
    with database.session() as session:
        ledger.credit_topup(session, account_id, 5_000_000, payment_intent_id="pi_1", topup_id="t")
    with pytest.raises(IntegrityError), database.session() as session:
        ledger.credit_topup(session, account_id, 5_000_000, payment_intent_id="pi_1", topup_id="t")
    assert _state(database, account_id) == ledger.Balances(5_000_000, 0)


def test_the_database_refuses_an_overdrawn_account_row(database: Database) -> None:
    account_id = _account(database, credit=1_000)
    with pytest.raises(IntegrityError), database.session() as session:
        session.exec(  # type: ignore[call-overload]
            text("UPDATE accounts SET held = 2000 WHERE id = :id"), params={"id": account_id}
        )


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE accounts SET balance = balance + 1 WHERE id = :id",
        "UPDATE holds SET held = held - 1 WHERE account_id = :id",
        "UPDATE ledger_entries SET balance_after = balance_after + 1 WHERE account_id = :id",
    ],
)
def test_check_invariants_notices_tampering(database: Database, tamper: str) -> None:
    account_id = _account(database, credit=1_000_000)
    _hold(database, account_id, 400_000)
    with database.session() as session:
        session.exec(text(tamper), params={"id": account_id})  # type: ignore[call-overload]
    with pytest.raises(ledger.InvariantViolation):
        _state(database, account_id)


def test_entries_record_the_running_state(database: Database) -> None:
    account_id = _account(database, credit=2_000_000)
    _hold(database, account_id, 500_000)
    with database.session(read_only=True) as session:
        newest, oldest = ledger.list_entries(session, account_id, limit=10)
    assert isinstance(newest, LedgerEntry)
    assert (oldest.kind, oldest.balance_after, oldest.held_after) == ("grant", 2_000_000, 0)
    assert (newest.kind, newest.balance_after, newest.held_after) == ("hold", 2_000_000, 500_000)
