"""The metering job: bill every running rental per second, keep its hold ahead, stop it at zero.

Each tick charges the whole seconds each rental has been seen running since its last charge
(the status job moves "seen running" forward), then tops its hold up when it covers less than
two ticks. A rental whose hold and the account's available credit together cannot pay for the
next tick is stopped at its provider (terminated where the provider cannot stop) and billed to
that moment: a customer is never run into debt, and every cent charged is a ledger entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select

from broker.db import Database
from broker.rentals.accounting import bill_to, close, keep_hold_ahead
from broker.rentals.service import lock_rental
from broker.rentals.tables import Rental
from providers.base import ProviderError, ProviderRefused
from providers.rental import NotSupported, RentalProvider

log = logging.getLogger("gpubroker.rentals")
BATCH = 200


@dataclass
class MeterReport:
    billed: int = 0
    stopped: list[str] = field(default_factory=list)


class Meter:
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, RentalProvider],
        clock: Callable[[], datetime],
        *,
        meter_seconds: float,
        min_hold_seconds: int,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.clock = clock
        self.ahead_seconds = max(1, int(2 * meter_seconds))
        self.min_hold_seconds = min_hold_seconds

    def run(self) -> MeterReport:
        report = MeterReport()
        with self.db.session(read_only=True) as session:
            ids = list(session.exec(select(Rental.id).where(Rental.status == "running")))
        broke: list[str] = []
        for start in range(0, len(ids), BATCH):
            with self.db.session() as session:
                rentals = session.exec(
                    select(Rental)
                    .where(col(Rental.id).in_(ids[start : start + BATCH]))
                    .where(Rental.status == "running")
                    .order_by(col(Rental.id))
                    .with_for_update()
                ).all()
                for rental in rentals:
                    seen = rental.last_seen_running_at or self.clock()
                    covered = bill_to(session, rental, min(self.clock(), seen))
                    ahead = keep_hold_ahead(
                        session,
                        rental,
                        ahead_seconds=self.ahead_seconds,
                        refill_seconds=self.min_hold_seconds,
                    )
                    if not (covered and ahead):
                        broke.append(rental.id)
                    session.add(rental)
                    report.billed += 1
        for rental_id in broke:
            if self.stop_for_credit(rental_id):
                report.stopped.append(rental_id)
        return report

    def stop_for_credit(self, rental_id: str) -> bool:
        """Stop (or terminate) a rental whose account ran out of credit; True when it ended."""
        with self.db.session(read_only=True) as session:
            rental = session.get(Rental, rental_id)
        if rental is None or rental.status != "running" or not rental.handle or not rental.provider:
            return False
        adapter = self.adapters[rental.provider]
        ended = "stopped"
        try:
            try:
                adapter.stop(rental.handle)
            except NotSupported:
                ended = "terminated"
                adapter.terminate(rental.handle)
        except ProviderRefused as exc:
            if exc.reason != "not_found":
                log.warning("could not stop rental %s out of credit: %s", rental_id, exc.message)
                return False
        except ProviderError as exc:
            log.warning("could not stop rental %s out of credit: %s", rental_id, exc.message)
            return False
        with self.db.session() as session:
            locked = lock_rental(session, rental_id)
            if locked.status != "running":
                return False
            close(session, locked, ended, self.clock(), "stopped: the account ran out of credit")
            session.add(locked)
        log.info("rental %s %s: out of credit", rental_id, ended)
        return True
