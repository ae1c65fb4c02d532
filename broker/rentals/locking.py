"""The one lock order of every transaction that changes a rental.

A rental's money and state change together, and three rows take part: the account (whose
balances the ledger caches), the rental's current hold, and the rental. Two transactions that
locked them in different orders could deadlock, so every path (rent, the user's actions, the
meter, the status job, reconciliation) takes them through `lock_rental`, in that order, and a
new row that refers to an account is inserted only once the account is locked.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from broker import ledger
from broker.db import Contention
from broker.domain_errors import NotFound
from broker.rentals.tables import Rental

log = logging.getLogger("gpubroker.rentals")


def lock_rental(session: Session, rental_id: str, account_id: str | None = None) -> Rental:
    """The rental row, locked for this transaction; NotFound for another account's rental.

    Takes the broker's one lock order: the rental's account, then its current hold, then the
    rental. Every hold change of a rental happens under its account's lock, so once that lock is
    held the hold read here is the one the locked rental names; the check after locking says so.
    """
    owner = session.exec(select(Rental.account_id).where(Rental.id == rental_id)).first()
    if owner is None or (account_id is not None and owner != account_id):
        raise NotFound(f"no rental {rental_id}")
    ledger.lock_account(session, owner)
    for _ in range(2):
        hold_id = session.exec(select(Rental.hold_id).where(Rental.id == rental_id)).one()
        if hold_id is not None:
            ledger.lock_hold(session, hold_id)
        statement = select(Rental).where(Rental.id == rental_id).with_for_update()
        rental = session.exec(statement.execution_options(populate_existing=True)).one()
        if rental.hold_id == hold_id:
            return rental
        log.warning("rental %s changed its hold without its account's lock", rental_id)
    raise Contention(2)
