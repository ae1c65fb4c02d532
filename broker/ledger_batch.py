"""Many holds moved in one transaction: the ledger's batch path, for the metering job.

Metering touches every running rental's hold every few seconds. Moving them one by one costs a
handful of round trips each; here a whole batch costs a few statements: lock the accounts, then
the holds (the same order as `broker.ledger`, so the two paths never deadlock), decide each
hold's moves in memory with the ledger's own functional core, and write the entries, holds and
balances with executemany. The invariants are exactly those of `broker.ledger`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from broker.db import bulk_insert, bulk_update
from broker.ledger import (
    _accounts,
    _connection,
    _entries,
    _holds,
)
from broker.ledger_core import Balances, Move, hold_totals, run_moves
from pricing.dbtypes import utcnow


@dataclass
class HoldState:
    """A hold row as the batch sees it (plain data: the ORM would cost more than the SQL)."""

    id: str
    account_id: str
    status: str
    held: int
    captured: int
    reference: str
    resolved_at: datetime | None


# Given a hold and its account's balances at that point of the batch, the moves to apply.
HoldPlan = Callable[[HoldState, Balances], Sequence[Move]]


@dataclass(frozen=True)
class Moved:
    """A hold after its plan ran, and how much of it was charged in this batch."""

    hold: HoldState
    charged: int


@dataclass
class LockedHolds:
    """Accounts and holds of a batch, locked in the ledger's order; balances as they stand."""

    accounts: dict[str, Balances]
    holds: list[HoldState]


def lock_holds(session: Session, hold_ids: Sequence[str]) -> LockedHolds:
    """Lock the accounts owning `hold_ids` (in id order), then the holds (in id order).

    A caller that also changes rows that refer to these holds (the meter's rentals) locks them
    after this, keeping the broker's one order: account, hold, rental.
    """
    conn = _connection(session)
    owners = conn.execute(
        select(_holds.c.account_id).where(_holds.c.id.in_(hold_ids)).distinct()
    ).scalars()
    accounts = {
        row.id: Balances(row.balance, row.held)
        for row in conn.execute(
            select(_accounts.c.id, _accounts.c.balance, _accounts.c.held)
            .where(_accounts.c.id.in_(sorted(owners)))
            .order_by(_accounts.c.id)
            .with_for_update()
        )
    }
    columns = [_holds.c[name] for name in HoldState.__dataclass_fields__]
    holds = [
        HoldState(*row)
        for row in conn.execute(
            select(*columns)
            .where(_holds.c.id.in_(hold_ids))
            .order_by(_holds.c.id)
            .with_for_update()
        )
    ]
    return LockedHolds(accounts, holds)


def move_locked(session: Session, locked: LockedHolds, plan: HoldPlan) -> dict[str, Moved]:
    """Apply `plan` to each open hold of a locked batch; holds that are not open are left alone.

    A plan must not overdraw its account (`run_moves` raises if it does, and nothing is
    written): plans see the balances left by the plans before them on the same account.
    """
    conn = _connection(session)
    accounts, holds = locked.accounts, locked.holds
    now = utcnow()
    entries: list[dict[str, object]] = []
    moved: dict[str, Moved] = {}
    touched: set[str] = set()  # accounts whose balances moved
    changed: set[str] = set()  # holds that moved
    for hold in holds:
        if hold.status != "open":
            continue
        steps = run_moves(accounts[hold.account_id], plan(hold, accounts[hold.account_id]))
        if not steps:
            moved[hold.id] = Moved(hold, 0)
            continue
        captured_before = hold.captured
        hold.held, hold.captured = hold_totals(hold.held, hold.captured, [m for m, _ in steps])
        accounts[hold.account_id] = steps[-1][1]
        touched.add(hold.account_id)
        changed.add(hold.id)
        moved[hold.id] = Moved(hold, hold.captured - captured_before)
        entries.extend(
            {
                "account_id": hold.account_id,
                "kind": kind,
                "amount": amount,
                "balance_after": after.balance,
                "held_after": after.held,
                "hold_id": hold.id,
                "reference": hold.reference,
                "dedupe_key": None,
                "created_at": now,
            }
            for (kind, amount), after in steps
        )
    if entries:
        bulk_insert(conn, _entries, entries)
        bulk_update(
            conn,
            _accounts,
            "id",
            [
                {"id": a, "balance": accounts[a].balance, "held": accounts[a].held}
                for a in sorted(touched)
            ],
        )
        bulk_update(
            conn,
            _holds,
            "id",
            [
                {"id": m.hold.id, "held": m.hold.held, "captured": m.hold.captured}
                for m in moved.values()
                if m.hold.id in changed
            ],
        )
    return moved
