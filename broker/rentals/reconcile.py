"""The reconciliation job: make the broker's rentals and the providers' instances agree.

- A rental left without an instance (the broker stopped between a provider accepting and the
  commit) is failed after a grace period, and its hold released.
- An instance at a provider that no live rental owns is an orphan: it is terminated, unless a
  placement may still be in flight for that provider (then it waits for the next pass).
- A live rental whose instance the provider no longer has is ended, billed to the last moment it
  was seen running.
Providers whose API cannot list instances are skipped and say so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select

from broker.db import Database
from broker.rentals.accounting import close
from broker.rentals.service import lock_rental
from broker.rentals.tables import LIVE_STATUSES, Rental
from providers.base import ProviderError, ProviderRefused
from providers.rental import Instance, InstanceStatus, NotSupported, RentalProvider

log = logging.getLogger("gpubroker.rentals")
ENDED = (InstanceStatus.TERMINATED, InstanceStatus.FAILED)


@dataclass
class ReconcileReport:
    failed_placements: list[str] = field(default_factory=list)
    orphans_terminated: list[str] = field(default_factory=list)
    rentals_lost: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, RentalProvider],
        clock: Callable[[], datetime],
        *,
        grace_seconds: float,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.clock = clock
        self.grace = timedelta(seconds=grace_seconds)

    def run(self) -> ReconcileReport:
        report = ReconcileReport()
        cutoff = self.clock() - self.grace
        self._fail_unplaced(cutoff, report)
        for name, adapter in self.adapters.items():
            try:
                instances = adapter.list_instances()
            except NotSupported:
                log.debug("%s cannot list instances; not reconciled", name)
                continue
            except ProviderError as exc:
                log.warning("reconciliation skipped %s: %s", name, exc.message)
                continue
            self._reconcile_provider(name, adapter, instances, cutoff, report)
        return report

    def _fail_unplaced(self, cutoff: datetime, report: ReconcileReport) -> None:
        with self.db.session() as session:
            stuck = session.exec(
                select(Rental.id).where(
                    Rental.status == "provisioning",
                    col(Rental.handle).is_(None),
                    col(Rental.created_at) < cutoff,
                )
            ).all()
            for rental_id in stuck:
                rental = lock_rental(session, rental_id)
                if rental.status == "provisioning" and rental.handle is None:
                    close(session, rental, "failed", self.clock(), "placement was interrupted")
                    session.add(rental)
                    report.failed_placements.append(rental_id)

    def _reconcile_provider(
        self,
        name: str,
        adapter: RentalProvider,
        instances: list[Instance],
        cutoff: datetime,
        report: ReconcileReport,
    ) -> None:
        with self.db.session(read_only=True) as session:
            live = dict(
                session.exec(
                    select(Rental.handle, Rental.id).where(
                        Rental.provider == name,
                        col(Rental.status).in_(LIVE_STATUSES),
                        col(Rental.handle).is_not(None),
                    )
                ).all()
            )
            in_flight = set(
                session.exec(
                    select(Rental.id).where(
                        Rental.status == "provisioning",
                        col(Rental.handle).is_(None),
                        col(Rental.created_at) >= cutoff,
                    )
                ).all()
            )
        for instance in instances:
            if instance.handle in live or instance.status in ENDED:
                continue
            if instance.rental_id in in_flight or (in_flight and instance.rental_id is None):
                continue
            try:
                adapter.terminate(instance.handle)
            except ProviderError as exc:
                log.warning(
                    "could not terminate orphan %s at %s: %s", instance.handle, name, exc.message
                )
                continue
            log.warning("terminated orphan instance %s at %s", instance.handle, name)
            report.orphans_terminated.append(instance.handle)
        listed = {i.handle for i in instances if i.status not in ENDED}
        for handle, rental_id in live.items():
            if handle not in listed and self._gone(adapter, handle):
                self._end_lost(rental_id, handle, report)

    @staticmethod
    def _gone(adapter: RentalProvider, handle: str) -> bool:
        """Confirm with the provider that an unlisted instance is really gone."""
        try:
            return adapter.status(handle).status in ENDED
        except ProviderRefused as exc:
            return exc.reason == "not_found"
        except ProviderError:
            return False

    def _end_lost(self, rental_id: str, handle: str, report: ReconcileReport) -> None:
        with self.db.session() as session:
            rental = lock_rental(session, rental_id)
            if rental.handle != handle or rental.status not in LIVE_STATUSES:
                return
            seen = rental.last_seen_running_at or rental.billed_until or self.clock()
            close(session, rental, "terminated", seen, "the provider no longer has the instance")
            session.add(rental)
        report.rentals_lost.append(rental_id)
