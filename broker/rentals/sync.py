"""The status job: follow every live rental at its provider and react to what changed.

- provisioning -> running: billing starts at that moment;
- provisioning -> failed: the hold is released, nothing was charged;
- running, still running: it was seen running now (the meter bills up to that moment);
- running -> interrupted (a spot loss, in each provider's own words): billing ends at the moment
  of loss, the loss feeds the observed interruption rate, and a rental that asked to `recover`
  is placed again on the next best offer under the same id and connect URL;
- running -> failed (the workload died; the provider's words, e.g. its last log lines, kept as
  the reason) or ended or stopped at the provider: billed to the last moment it was seen running.
A provider that cannot be reached changes nothing: the rental is looked at again next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlmodel import col, select

from broker import ledger
from broker.db import Database
from broker.rentals import observed
from broker.rentals.accounting import close, start_billing
from broker.rentals.billing import hold_for
from broker.rentals.placement import place
from broker.rentals.ranking import Blocklist, Constraints, rank
from broker.rentals.service import lock_rental, ssh_json
from broker.rentals.tables import Rental
from pricing.catalog import Catalog
from pricing.offer import Tier
from providers.base import ProviderError, ProviderRefused
from providers.rental import (
    Instance,
    InstanceStatus,
    RentalProvider,
    UnsupportedWorkload,
    Workload,
    WorkloadMode,
)

log = logging.getLogger("gpubroker.rentals")


class StatusSync:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        adapters: Mapping[str, RentalProvider],
        clock: Callable[[], datetime],
        *,
        min_hold_seconds: int,
        max_attempts: int = 6,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.adapters = adapters
        self.clock = clock
        self.min_hold_seconds = min_hold_seconds
        self.max_attempts = max_attempts

    def run(self) -> None:
        """One pass over every rental that is provisioning or running."""
        with self.db.session(read_only=True) as session:
            watched = session.exec(
                select(Rental.id, Rental.provider, Rental.handle).where(
                    col(Rental.status).in_(("provisioning", "running")),
                    col(Rental.handle).is_not(None),
                )
            ).all()
        for rental_id, provider, handle in watched:
            adapter = self.adapters.get(provider or "")
            if adapter is None or handle is None:
                continue
            try:
                instance = adapter.status(handle)
            except ProviderRefused as exc:
                if exc.reason != "not_found":
                    log.warning("status of rental %s: %s", rental_id, exc.message)
                    continue
                instance = Instance(
                    provider or "", handle, InstanceStatus.TERMINATED, reason="gone"
                )
            except ProviderError as exc:
                log.warning("status of rental %s: %s", rental_id, exc.message)
                continue
            self.apply(rental_id, handle, instance)

    def apply(self, rental_id: str, handle: str, instance: Instance) -> None:
        """Move one rental to what its provider reports."""
        now = self.clock()
        interrupted = False
        with self.db.session() as session:
            rental = lock_rental(session, rental_id)
            if rental.handle != handle or rental.status not in ("provisioning", "running"):
                return
            state = instance.status
            if rental.status == "provisioning":
                if state is InstanceStatus.RUNNING:
                    start_billing(rental, now)
                    rental.ssh = ssh_json(instance) or rental.ssh
                elif state in (InstanceStatus.FAILED, InstanceStatus.TERMINATED):
                    close(
                        session, rental, "failed", now, f"the provider failed it: {instance.reason}"
                    )
            elif state is InstanceStatus.RUNNING:
                rental.last_seen_running_at = now
            elif state is InstanceStatus.INTERRUPTED:
                loss = self._moment_of_loss(rental, instance)
                observed.record(session, rental, loss, interrupted=True)
                rental.interruptions += 1
                close(
                    session, rental, "interrupted", loss, f"spot instance lost: {instance.reason}"
                )
                interrupted = True
            elif state is InstanceStatus.FAILED:
                seen = rental.last_seen_running_at or now
                observed.record(session, rental, seen, interrupted=False)
                close(session, rental, "failed", seen, f"the provider failed it: {instance.reason}")
            elif state is not InstanceStatus.PROVISIONING:
                seen = rental.last_seen_running_at or now
                observed.record(session, rental, seen, interrupted=False)
                ended = "stopped" if state is InstanceStatus.STOPPED else "terminated"
                close(session, rental, ended, seen, f"{state.value} at the provider")
            session.add(rental)
            if interrupted:
                observed.refresh_catalog(session, self.catalog)
        if interrupted and rental.recover:
            self.recover(rental_id)

    def _moment_of_loss(self, rental: Rental, instance: Instance) -> datetime:
        """When the instance was lost: the provider's own time where it falls after the last
        moment the broker saw it running (and not in the future), else that last moment."""
        now = self.clock()
        seen = rental.last_seen_running_at or rental.billed_until or now
        said = instance.ended_at
        return said if said is not None and seen <= said <= now else seen

    def recover(self, rental_id: str) -> None:
        """Place an interrupted rental again, same id and connect URL, on the next best offer."""
        with self.db.session(read_only=True) as session:
            rental = session.get(Rental, rental_id)
        if rental is None or rental.status != "interrupted":
            return
        blocked = Blocklist()
        if rental.offer_id:
            blocked.offers.add(rental.offer_id)
        workload = workload_of(rental.request)
        candidates = []
        for offer in rank(self.catalog.index, constraints_of(rental)):
            if blocked.blocks(offer) or offer.provider not in self.adapters:
                continue
            try:
                self.adapters[offer.provider].check_workload(offer, workload)
            except UnsupportedWorkload:
                continue
            candidates.append(offer)
        if not candidates:
            self._recovery_failed(rental_id, "no other offer matches")
            return
        first = candidates[0]
        try:
            with self.db.session() as session:
                locked = lock_rental(session, rental_id)
                amount = hold_for(first.price_per_hour, self.min_hold_seconds)
                locked.hold_id = ledger.place_hold(
                    session, locked.account_id, amount, ref=rental_id
                ).id
                locked.status, locked.handle = "provisioning", None
                session.add(locked)
        except ledger.InsufficientCredit as short:
            self._recovery_failed(rental_id, short.message)
            return
        placement = place(
            self.db,
            self.adapters,
            rental_id=rental_id,
            hold_id=locked.hold_id or "",
            held_for_price=first.price_per_hour,
            hold_seconds=self.min_hold_seconds,
            candidates=candidates,
            workload=workload,
            max_attempts=self.max_attempts,
        )
        offer, instance = placement.offer, placement.instance
        with self.db.session() as session:
            locked = lock_rental(session, rental_id)
            locked.attempts = [*locked.attempts, *placement.attempts]
            if offer is None or instance is None:
                close(session, locked, "interrupted", self.clock(), "recovery found no capacity")
            else:
                locked.provider, locked.offer_id, locked.handle = (
                    offer.provider,
                    offer.id,
                    instance.handle,
                )
                locked.region, locked.tier, locked.gpu = offer.region, offer.tier.value, offer.gpu
                locked.price_per_hour, locked.ended_at = offer.price_per_hour, None
                # The new placement is billed at its own price from zero seconds.
                locked.earlier_seconds += locked.billed_seconds
                locked.earlier_charged += locked.charged
                locked.billed_seconds, locked.charged = 0, 0
                locked.reason = f"recovered on {offer.id} after a spot interruption"
                if instance.status is InstanceStatus.RUNNING:
                    start_billing(locked, self.clock())
            session.add(locked)

    def _recovery_failed(self, rental_id: str, why: str) -> None:
        with self.db.session() as session:
            locked = lock_rental(session, rental_id)
            locked.reason = f"spot instance lost; recovery failed: {why}"
            session.add(locked)


def workload_of(body: Mapping[str, object]) -> Workload:
    """The workload of a stored request body."""
    raw = body.get("workload") or {}
    assert isinstance(raw, dict)
    return Workload(
        mode=WorkloadMode(raw.get("mode", WorkloadMode.CUSTOM.value)),
        image=raw.get("image"),
        model=raw.get("model"),
        template=raw.get("template"),
        ports=tuple(raw.get("ports") or ()),
        env=dict(raw.get("env") or {}),
        ssh_key=raw.get("ssh_key"),
    )


def constraints_of(rental: Rental) -> Constraints:
    """What a recovery may land on: the request's constraints, or the rented offer's shape."""
    body = rental.request
    raw = body.get("constraints")
    if isinstance(raw, dict):
        return Constraints(
            gpus=tuple(raw.get("gpus") or ()),
            gpu_count=int(raw.get("gpu_count") or 1),
            tier=Tier(raw["tier"]) if raw.get("tier") else None,
            max_price=raw.get("max_price"),
            region=raw.get("region"),
            max_interruption=raw.get("max_interruption"),
            providers=tuple(raw.get("providers") or ()),
        )
    max_price = body.get("max_price")
    return Constraints(
        gpus=(rental.gpu,) if rental.gpu else (),
        gpu_count=rental.gpu_count,
        max_price=max_price if isinstance(max_price, int) else None,
    )
