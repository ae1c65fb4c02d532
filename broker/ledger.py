"""The credit ledger: append-only entries per account, holds resolved exactly once.

Every movement of money is a `LedgerEntry` with a positive `amount` in micro-dollars and a `kind`
whose effect on the account is fixed by `EFFECTS`:

    topup, grant   balance += amount                 (money in)
    hold           held    += amount                 (set aside; available shrinks)
    charge         balance -= amount, held -= amount (captured from a hold)
    release        held    -= amount                 (set-aside money given back)

The account row caches `balance` and `held` and is written in the same transaction as the entries,
so these invariants hold after every commit (`check_invariants` verifies them):

1. balance = the sum of the entries' signed balance effects; held likewise.
2. held = the sum of the `held` amounts of the account's open holds; a resolved hold holds 0.
3. available = balance - held >= 0: a hold that does not fit raises `InsufficientCredit`.
4. Each entry's `balance_after` / `held_after` is the running state after it, in id order.
5. A hold is resolved (`settle` or `release`) exactly once; resolving it again raises
   `HoldNotOpen` and moves nothing. A hold's `captured` is the sum of its charges; a resolved
   hold is `captured` when any of it was charged, `released` when none was.
6. An entry with a `dedupe_key` (a Stripe PaymentIntent) exists at most once.

Structure: a functional core (`broker.ledger_core`: `Balances`, the `plan_*` functions) decides
which entries a request produces, or refuses it, from the current state alone. This module is the
shell around it: it locks that state, applies the plan and writes the entries. Locking: PostgreSQL
takes `SELECT ... FOR UPDATE` on the account row, then on the hold row (always in that order, so
two requests never deadlock on them; a path that also changes a rental locks the rental third, and
a new row that refers to the account is inserted only after the account is locked: see
`broker.rentals.locking.lock_rental`); SQLite transactions from `broker.db` begin IMMEDIATE, which
serializes writers. The primitives never commit: the caller commits, so a rental's state change and
its money move together. They write through the session's connection and return detached snapshots
(a `Hold`, `LedgerEntry`); read balances with `balances`, not from an `Account` loaded earlier in
the same session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from broker.ledger_core import (
    Balances,
    HoldNotOpen,
    Kind,
    Move,
    UnknownAccount,
    UnknownHold,
    hold_totals,
    non_negative,
    plan_charge,
    plan_hold,
    plan_release,
    plan_settle,
    run_moves,
)
from broker.ledger_core import InsufficientCredit as InsufficientCredit  # what callers catch
from broker.ledger_tables import Account, Hold, LedgerEntry
from pricing.dbtypes import table_of, utcnow


class InvariantViolation(AssertionError):
    """The stored ledger contradicts itself; the message lists every broken invariant."""


# ---- database shell -----------------------------------------------------------------------
# Core statements on the session's connection: this path runs for every metering tick, and the
# ORM's unit of work would cost several times the database's own time here.

_accounts = table_of(Account)
_holds = table_of(Hold)
_entries = table_of(LedgerEntry)

_LOCK_ACCOUNT = (
    select(_accounts.c.balance, _accounts.c.held)
    .where(_accounts.c.id == bindparam("account_id"))
    .with_for_update()
)
_LOCK_ACCOUNT_OF_HOLD = (
    select(_accounts.c.balance, _accounts.c.held)
    .where(
        _accounts.c.id
        == select(_holds.c.account_id).where(_holds.c.id == bindparam("hold_id")).scalar_subquery()
    )
    .with_for_update(of=_accounts)
)
_LOCK_HOLD = _holds.select().where(_holds.c.id == bindparam("hold_id")).with_for_update()
_SET_BALANCES = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account_id"))
    .values(balance=bindparam("new_balance"), held=bindparam("new_held"))
)
_SET_HOLD = (
    update(_holds)
    .where(_holds.c.id == bindparam("hold_id"))
    .values(
        status=bindparam("new_status"),
        held=bindparam("new_held"),
        captured=bindparam("new_captured"),
        resolved_at=bindparam("new_resolved_at"),
    )
)
_INSERT_HOLD = insert(_holds)
_INSERT_ENTRIES = insert(_entries).returning(_entries.c.id, sort_by_parameter_order=True)


def _connection(session: Session) -> Connection:
    """The session's connection, with anything the caller added to the session written first."""
    session.flush()
    return session.connection()


def _lock_account(conn: Connection, account_id: str) -> Balances:
    row = conn.execute(_LOCK_ACCOUNT, {"account_id": account_id}).first()
    if row is None:
        raise UnknownAccount(account_id)
    return Balances(row.balance, row.held)


def lock_account(session: Session, account_id: str) -> Balances:
    """Lock the account row for this transaction (the first lock of every money path)."""
    return _lock_account(_connection(session), account_id)


def lock_hold(session: Session, hold_id: str) -> None:
    """Lock the hold row for this transaction; take its account's lock first."""
    _connection(session).execute(_LOCK_HOLD, {"hold_id": hold_id})


def _lock_open_hold(conn: Connection, hold_id: str) -> tuple[Balances, Hold]:
    """Lock the hold's account, then the hold (always this order), and check it is open."""
    account = conn.execute(_LOCK_ACCOUNT_OF_HOLD, {"hold_id": hold_id}).first()
    if account is None:
        raise UnknownHold(hold_id)
    hold = Hold(**conn.execute(_LOCK_HOLD, {"hold_id": hold_id}).one()._mapping)
    if hold.status != "open":
        raise HoldNotOpen(hold_id, hold.status)
    return Balances(account.balance, account.held), hold


def _append(
    conn: Connection,
    account_id: str,
    steps: Sequence[tuple[Move, Balances]],
    *,
    hold_id: str | None = None,
    reference: str = "",
    dedupe_key: str | None = None,
) -> list[dict[str, Any]]:
    """Write a checked plan: its entries, and the account's balances after the last of them.

    Returns the entries' column values, ids included.
    """
    if not steps:
        return []
    now = utcnow()
    rows = [
        {
            "account_id": account_id,
            "kind": kind,
            "amount": amount,
            "balance_after": after.balance,
            "held_after": after.held,
            "hold_id": hold_id,
            "reference": reference,
            "dedupe_key": dedupe_key,
            "created_at": now,
        }
        for (kind, amount), after in steps
    ]
    ids = conn.execute(_INSERT_ENTRIES, rows).scalars().all()
    final = steps[-1][1]
    conn.execute(
        _SET_BALANCES,
        {"account_id": account_id, "new_balance": final.balance, "new_held": final.held},
    )
    return [{"id": entry_id, **row} for entry_id, row in zip(ids, rows, strict=True)]


def _change_hold(
    session: Session, hold_id: str, plan: Callable[[Hold], list[Move]], *, resolve: bool
) -> Hold:
    """Apply `plan(hold)` to an open hold; with `resolve`, close it. Returns its new state."""
    conn = _connection(session)
    state, hold = _lock_open_hold(conn, hold_id)
    steps = run_moves(state, plan(hold))
    hold.held, hold.captured = hold_totals(hold.held, hold.captured, [m for m, _ in steps])
    if resolve:
        hold.status = "captured" if hold.captured > 0 else "released"
        hold.resolved_at = utcnow()
    _append(conn, hold.account_id, steps, hold_id=hold.id, reference=hold.reference)
    conn.execute(
        _SET_HOLD,
        {
            "hold_id": hold.id,
            "new_status": hold.status,
            "new_held": hold.held,
            "new_captured": hold.captured,
            "new_resolved_at": hold.resolved_at,
        },
    )
    return hold


def _credit(
    session: Session,
    account_id: str,
    kind: Kind,
    amount: int,
    reference: str,
    dedupe_key: str | None,
) -> LedgerEntry:
    if non_negative(amount, f"a {kind}") == 0:
        raise ValueError(f"a {kind} must be positive")
    conn = _connection(session)
    steps = run_moves(_lock_account(conn, account_id), [(kind, amount)])
    (row,) = _append(conn, account_id, steps, reference=reference, dedupe_key=dedupe_key)
    return LedgerEntry(**row)


def grant(session: Session, account_id: str, amount: int, reason: str) -> LedgerEntry:
    """Credit given by the operator (a `grant` entry)."""
    return _credit(session, account_id, "grant", amount, reason, None)


def credit_topup(
    session: Session, account_id: str, amount: int, *, payment_intent_id: str, topup_id: str
) -> LedgerEntry:
    """Credit a paid top-up. The PaymentIntent id is the entry's unique `dedupe_key`, so a
    second credit for it fails with an IntegrityError instead of doubling the money."""
    return _credit(session, account_id, "topup", amount, topup_id, f"stripe:{payment_intent_id}")


def place_hold(session: Session, account_id: str, amount: int, *, ref: str) -> Hold:
    """Set `amount` aside for `ref` (a rental id); InsufficientCredit if it does not fit."""
    moves = plan_hold(amount)
    conn = _connection(session)
    steps = run_moves(_lock_account(conn, account_id), moves)
    hold = Hold(account_id=account_id, reference=ref, held=amount)
    conn.execute(_INSERT_HOLD, {column.name: getattr(hold, column.name) for column in _holds.c})
    _append(conn, account_id, steps, hold_id=hold.id, reference=ref)
    return hold


def extend_hold(session: Session, hold_id: str, amount: int) -> Hold:
    """Set `amount` more aside on an open hold."""
    moves = plan_hold(amount)
    return _change_hold(session, hold_id, lambda _: moves, resolve=False)


def charge(session: Session, hold_id: str, amount: int) -> Hold:
    """Capture `amount` from an open hold, which stays open (metering).

    Beyond what the hold still covers, the excess is set aside from available credit first; if
    that does not fit either, InsufficientCredit says how much is missing and nothing moves.
    """
    return _change_hold(session, hold_id, lambda h: plan_charge(h.held, amount), resolve=False)


def settle(session: Session, hold_id: str, final_charge: int) -> Hold:
    """Resolve a hold: capture `final_charge` and release the rest. Only once per hold."""
    return _change_hold(session, hold_id, lambda h: plan_settle(h.held, final_charge), resolve=True)


def release(session: Session, hold_id: str) -> Hold:
    """Resolve a hold by giving back everything still set aside. Only once per hold."""
    return _change_hold(session, hold_id, lambda h: plan_release(h.held), resolve=True)


def balances(session: Session, account_id: str) -> Balances:
    """The account's cached balances as of this transaction's snapshot (no lock)."""
    row = session.exec(
        select(Account.balance, Account.held).where(Account.id == account_id)
    ).first()
    if row is None:
        raise UnknownAccount(account_id)
    return Balances(row[0], row[1])


def list_entries(
    session: Session, account_id: str, *, limit: int, before: int | None = None
) -> list[LedgerEntry]:
    """Up to `limit` entries, newest first, with ids below `before` when given."""
    statement = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
    if before is not None:
        statement = statement.where(col(LedgerEntry.id) < before)
    statement = statement.order_by(col(LedgerEntry.id).desc()).limit(limit)
    return list(session.exec(statement))


def check_invariants(session: Session, account_id: str) -> Balances:
    """Verify every invariant of the module docstring for one account; raise if any fails.

    It reads the account row, its entries and its holds in separate statements: while writers
    may run, call it in one snapshot (PostgreSQL REPEATABLE READ), or the rows can disagree.
    """
    account = session.exec(
        select(Account).where(Account.id == account_id).execution_options(populate_existing=True)
    ).one()
    cached = Balances(account.balance, account.held)
    problems: list[str] = []

    state = Balances(0, 0)
    per_hold: dict[str, tuple[int, int]] = {}  # hold id -> (held, captured) from its entries
    entries = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account_id)
        .order_by(col(LedgerEntry.id))
    )
    for entry in entries:
        state = state.apply(entry.kind, entry.amount)
        if (entry.balance_after, entry.held_after) != (state.balance, state.held):
            problems.append(f"entry {entry.id}: recorded after-state differs from the running sum")
        if entry.hold_id is not None:
            held, captured = per_hold.get(entry.hold_id, (0, 0))
            per_hold[entry.hold_id] = hold_totals(held, captured, [(entry.kind, entry.amount)])
    if state != cached:
        problems.append(f"entries sum to {state}, the account caches {cached}")
    if cached.available < 0 or cached.held < 0:
        problems.append(f"available {cached.available} or held {cached.held} is negative")

    holds = list(session.exec(select(Hold).where(Hold.account_id == account_id)))
    open_held = sum(h.held for h in holds if h.status == "open")
    if open_held != cached.held:
        problems.append(f"open holds hold {open_held}, the account caches held {cached.held}")
    for hold in holds:
        if (hold.held, hold.captured) != per_hold.get(hold.id, (0, 0)):
            problems.append(f"hold {hold.id}: row {hold.held}/{hold.captured} != its entries")
        if hold.status != "open" and hold.held != 0:
            problems.append(f"hold {hold.id} is {hold.status} but still holds {hold.held}")
    if problems:
        raise InvariantViolation(f"account {account_id}: " + "; ".join(problems))
    return cached
