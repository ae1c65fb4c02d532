"""The reconciliation job: make the broker's rentals and the providers' instances agree, touching
only what this deployment started.

- A placement whose provider call never got an answer recorded (the broker stopped mid-call) is
  reported as interrupted, naming the provider, offer and time where an orphan may run.
- A rental left without an instance (the broker stopped between a provider accepting and the
  commit) is failed after a grace period, and its hold released.
- An instance at a provider that no live rental owns is an orphan. It is terminated only when it
  is this deployment's (`broker.ownership.judge`: its own tag, one of its own recorded
  placements, or an untagged instance on an account the operator declares exclusive) and no
  placement for it may still be in flight. Another deployment's instances are never touched;
  untagged ones on a shared account are reported and left alone.
- A live rental whose instance the provider no longer has is ended, billed to the last moment it
  was seen running.

Each pass is written to `reconcile_runs` (the admin endpoint reads it from any replica), counted
in `gpubroker_reconcile_findings_total`, and anything that needs the operator is logged.
Providers whose API cannot list instances are skipped and say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from prometheus_client import Counter
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from broker.db import Database
from broker.ownership import Verdict, exclusive_providers, judge, resolve_deployment
from broker.rentals.accounting import close
from broker.rentals.locking import lock_rental
from broker.rentals.tables import LIVE_STATUSES, Placement, ReconcileRun, Rental
from pricing.dbtypes import utcnow
from providers.base import ProviderError, ProviderRefused
from providers.rental import Instance, InstanceStatus, NotSupported, RentalProvider

log = logging.getLogger("gpubroker.rentals")
ENDED = (InstanceStatus.TERMINATED, InstanceStatus.FAILED)
KEEP_RUNS = 500

# Registered on each app's own registry (`install_metrics` callers add it), never globally.
FINDINGS = Counter(
    "gpubroker_reconcile_findings_total",
    "What reconciliation found or did, by kind and provider",
    ["kind", "provider"],
    registry=None,
)


@dataclass
class ReconcileReport:
    failed_placements: list[str] = field(default_factory=list)
    orphans_terminated: list[str] = field(default_factory=list)
    rentals_lost: list[str] = field(default_factory=list)
    orphans_not_terminated: list[dict[str, str]] = field(default_factory=list)
    skipped_foreign: list[dict[str, str]] = field(default_factory=list)
    skipped_untagged: list[dict[str, str]] = field(default_factory=list)
    interrupted_placements: list[dict[str, str]] = field(default_factory=list)
    providers_skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Reconciler:
    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, RentalProvider],
        clock: Callable[[], datetime],
        *,
        grace_seconds: float,
        deployment: str | None = None,
        exclusive: Collection[str] | None = None,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.clock = clock
        self.grace = timedelta(seconds=grace_seconds)
        self.deployment = deployment or resolve_deployment(db, None)
        self.exclusive = exclusive_providers(exclusive)

    def run(self) -> ReconcileReport:
        started = utcnow()
        report = ReconcileReport()
        cutoff = self.clock() - self.grace
        self._close_interrupted(cutoff, report)
        self._fail_unplaced(cutoff, report)
        for name, adapter in self.adapters.items():
            try:
                instances = adapter.list_instances()
            except NotSupported:
                log.debug("%s cannot list instances; not reconciled", name)
                continue
            except ProviderError as exc:
                log.warning("reconciliation skipped %s: %s", name, exc.message)
                FINDINGS.labels("provider_skipped", name).inc()
                report.providers_skipped.append({"provider": name, "reason": exc.message})
                continue
            self._reconcile_provider(name, adapter, instances, cutoff, report)
        self._record(started, report)
        return report

    # --- placements cut short ------------------------------------------------------------------

    def _close_interrupted(self, cutoff: datetime, report: ReconcileReport) -> None:
        with self.db.session() as session:
            open_rows = session.exec(
                select(Placement).where(
                    col(Placement.outcome).is_(None), col(Placement.started_at) < cutoff
                )
            ).all()
            for row in open_rows:
                closed = session.exec(
                    update(Placement)
                    .where(col(Placement.id) == row.id, col(Placement.outcome).is_(None))
                    .values(outcome="interrupted", finished_at=utcnow())
                )
                if closed.rowcount != 1:
                    continue  # another replica reported it
                FINDINGS.labels("interrupted_placement", row.provider).inc()
                log.warning(
                    "placement of rental %s at %s (offer %s) started %s was cut short: an "
                    "instance may be running there",
                    row.rental_id,
                    row.provider,
                    row.offer_id,
                    row.started_at.isoformat(),
                )
                report.interrupted_placements.append(
                    {
                        "rental_id": row.rental_id,
                        "provider": row.provider,
                        "offer_id": row.offer_id,
                        "started_at": row.started_at.isoformat(),
                    }
                )

    def _fail_unplaced(self, cutoff: datetime, report: ReconcileReport) -> None:
        with self.db.session(read_only=True) as session:
            recent = _recent_placements(session, cutoff)
            stuck = session.exec(
                select(Rental.id).where(
                    Rental.status == "provisioning",
                    col(Rental.handle).is_(None),
                    col(Rental.created_at) < cutoff,
                )
            ).all()
        for rental_id in stuck:
            if rental_id in recent:
                continue  # a placement (a spot recovery) is under way
            # One transaction per rental: each takes its own account's lock first, so a pass
            # never holds two accounts at once (the meter locks a batch of them in id order).
            if self.db.transact(partial(self._fail_one, rental_id=rental_id)):
                report.failed_placements.append(rental_id)
                FINDINGS.labels("failed_placement", "").inc()

    def _fail_one(self, session: Session, rental_id: str) -> bool:
        rental = lock_rental(session, rental_id)
        if rental.status != "provisioning" or rental.handle is not None:
            return False
        close(session, rental, "failed", self.clock(), "placement was interrupted")
        session.add(rental)
        return True

    # --- one provider --------------------------------------------------------------------------

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
            in_flight = _in_flight(session, cutoff, name)
            placed = set(
                session.exec(
                    select(Placement.handle).where(
                        Placement.provider == name, col(Placement.handle).is_not(None)
                    )
                ).all()
            )
        # Both queries leave out the null handles that the columns allow.
        live_handles = cast(dict[str, str], live)
        placed_handles = cast(set[str], placed)
        exclusive = name in self.exclusive
        for instance in instances:
            if instance.handle in live_handles or instance.status in ENDED:
                continue
            verdict = judge(
                instance, self.deployment, exclusive=exclusive, placed_handles=placed_handles
            )
            if verdict is not Verdict.OWN:
                self._skip(name, instance, verdict, report)
                continue
            if instance.rental_id in in_flight or (in_flight and instance.rental_id is None):
                continue
            self._terminate_orphan(name, adapter, instance, report)
        listed = {i.handle for i in instances if i.status not in ENDED}
        for handle, rental_id in live_handles.items():
            if handle not in listed and self._gone(adapter, handle):
                self._end_lost(rental_id, handle, report)

    def _skip(
        self, name: str, instance: Instance, verdict: Verdict, report: ReconcileReport
    ) -> None:
        FINDINGS.labels(f"skipped_{verdict.value}", name).inc()
        found = {"provider": name, "handle": instance.handle}
        if instance.rental_id:
            found["rental_id"] = instance.rental_id
        if verdict is Verdict.FOREIGN:
            found["deployment"] = instance.deployment or ""
            report.skipped_foreign.append(found)
            log.debug("%s at %s is deployment %s's", instance.handle, name, found["deployment"])
        else:
            report.skipped_untagged.append(found)
            log.info(
                "untagged instance %s at %s is unknown here and left alone (the account is not "
                "declared exclusive: GPUBROKER_EXCLUSIVE_PROVIDERS)",
                instance.handle,
                name,
            )

    def _terminate_orphan(
        self, name: str, adapter: RentalProvider, instance: Instance, report: ReconcileReport
    ) -> None:
        try:
            adapter.terminate(instance.handle)
        except ProviderError as exc:
            log.warning(
                "could not terminate orphan %s at %s: %s", instance.handle, name, exc.message
            )
            FINDINGS.labels("orphan_not_terminated", name).inc()
            report.orphans_not_terminated.append(
                {"provider": name, "handle": instance.handle, "message": exc.message}
            )
            return
        log.warning("terminated orphan instance %s at %s", instance.handle, name)
        FINDINGS.labels("orphan_terminated", name).inc()
        report.orphans_terminated.append(instance.handle)

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
        def end(session: Session) -> bool:
            rental = lock_rental(session, rental_id)
            if rental.handle != handle or rental.status not in LIVE_STATUSES:
                return False
            seen = rental.last_seen_running_at or rental.billed_until or self.clock()
            close(session, rental, "terminated", seen, "the provider no longer has the instance")
            session.add(rental)
            return True

        if self.db.transact(end):
            FINDINGS.labels("rental_lost", "").inc()
            report.rentals_lost.append(rental_id)

    # --- the record ----------------------------------------------------------------------------

    def _record(self, started: datetime, report: ReconcileReport) -> None:
        with self.db.session() as session:
            session.add(
                ReconcileRun(
                    deployment_id=self.deployment,
                    started_at=started,
                    finished_at=utcnow(),
                    findings=report.to_json(),
                )
            )
            session.flush()
            newest = cast(  # ids of stored runs, never null
                Sequence[int],
                session.exec(
                    select(ReconcileRun.id).order_by(col(ReconcileRun.id).desc()).limit(KEEP_RUNS)
                ).all(),
            )
            if len(newest) == KEEP_RUNS:
                session.exec(delete(ReconcileRun).where(col(ReconcileRun.id) < min(newest)))


def _recent_placements(session: Session, cutoff: datetime) -> set[str]:
    """Rentals with a provision call started since `cutoff` (answered or not)."""
    query = select(Placement.rental_id).where(col(Placement.started_at) >= cutoff)
    return set(session.exec(query).all())


def _in_flight(session: Session, cutoff: datetime, provider: str) -> set[str]:
    """Rentals whose instance at `provider` may exist before the broker has recorded it: a
    provision call still unanswered there, or an answered one not yet committed to the rental
    (a rental still provisioning without a handle, created or re-placed since `cutoff`)."""
    unanswered = session.exec(
        select(Placement.rental_id).where(
            Placement.provider == provider,
            col(Placement.outcome).is_(None),
            col(Placement.started_at) >= cutoff,
        )
    ).all()
    recent = _recent_placements(session, cutoff)
    unrecorded = session.exec(
        select(Rental.id, Rental.created_at).where(
            Rental.status == "provisioning", col(Rental.handle).is_(None)
        )
    ).all()
    return set(unanswered) | {
        rental_id for rental_id, created in unrecorded if created >= cutoff or rental_id in recent
    }

