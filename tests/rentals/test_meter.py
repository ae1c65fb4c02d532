"""The batched metering tick: exact charges across many rentals sharing accounts, holds kept
ahead, and the rentals whose account cannot pay for the next tick flagged, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from broker import accounts, ledger
from broker.db import Database
from broker.rentals.billing import cost_of, hold_for
from broker.rentals.meter import Meter
from broker.rentals.tables import Rental

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
PRICE = 3_600_000  # one dollar per hour... times 3.6: 1,000 micro-dollars a second


def seed(db: Database, credit: int, rentals: int, hold_seconds: int) -> tuple[str, list[str]]:
    with db.session() as session:
        account, _ = accounts.create_account(session, "metered")
        ledger.grant(session, account.id, credit, "credit")
        ids = []
        for n in range(rentals):
            rental = Rental(
                account_id=account.id,
                request_hash="x",
                request={},
                rental_key_hash=f"{account.id}{n}",
                status="running",
                provider="empiriolabs",
                handle=f"h{n}",
                gpu="RTX 4090",
                tier="on_demand",
                price_per_hour=PRICE,
                billed_until=T0,
                running_since=T0,
                started_at=T0,
                last_seen_running_at=T0 + timedelta(seconds=100),
            )
            session.add(rental)
            session.flush()
            amount = hold_for(PRICE, hold_seconds)
            rental.hold_id = ledger.place_hold(session, account.id, amount, ref=rental.id).id
            session.add(rental)
            ids.append(rental.id)
    return account.id, ids


def test_a_tick_charges_exactly_what_was_seen_running(database: Database) -> None:
    rich, _ = seed(database, 10_000_000_000, 4, 3600)
    meter = Meter(
        database, {}, lambda: T0 + timedelta(seconds=130), meter_seconds=15, min_hold_seconds=3600
    )
    report = meter.run()
    assert report.billed == 4 and report.out_of_credit == []
    with database.session(read_only=True) as session:
        rentals = session.exec(select(Rental).where(Rental.account_id == rich)).all()
        assert {(r.billed_seconds, r.charged) for r in rentals} == {(100, cost_of(PRICE, 100))}
        balances = ledger.check_invariants(session, rich)
    assert balances.balance == 10_000_000_000 - 4 * cost_of(PRICE, 100)
    assert balances.held == 4 * (hold_for(PRICE, 3600) - cost_of(PRICE, 100))
    meter.run()  # nothing new was seen running: nothing more is charged
    with database.session(read_only=True) as session:
        assert ledger.check_invariants(session, rich) == balances


def test_rentals_an_account_cannot_keep_paying_are_flagged(database: Database) -> None:
    # Three rentals each holding 60 s; the account has 200 s of credit in all, so after
    # 100 s of each (300 s) it has paid what it could and cannot cover the next tick.
    poor, poor_ids = seed(database, 3 * cost_of(PRICE, 60) + cost_of(PRICE, 20), 3, 60)
    meter = Meter(
        database, {}, lambda: T0 + timedelta(seconds=130), meter_seconds=15, min_hold_seconds=600
    )
    report = meter.run()
    assert sorted(report.out_of_credit) == sorted(poor_ids)
    with database.session(read_only=True) as session:
        balances = ledger.check_invariants(session, poor)
        charged = sum(r.charged for r in session.exec(select(Rental)).all())
    assert balances.balance >= 0 and balances.available >= 0
    assert charged == 3 * cost_of(PRICE, 60) + cost_of(PRICE, 20) - balances.balance
