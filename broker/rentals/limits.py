"""Per-rental spending limits: how far a tick may bill a rental, and when it is idle.

A rental may carry `max_duration_seconds` (billed running seconds over its whole life, every
placement of a recovered spot rental counted), `max_cost` (micro-dollars; its total cost never
passes it) and `idle_timeout_seconds` (no traffic through its connect proxy for that long while
running). The meter bills through `capped`, which stops a tick's billing at the second a limit is
reached and prorates the last charge so the cost lands exactly on `max_cost`; the rental is then
ended (`END_BY`) with `reason` naming the limit. Everything here is pure arithmetic, except
`Activity`, the in-memory record of proxy traffic that a job writes to the rentals now and then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import bindparam, or_, update
from sqlmodel import col, select

from broker.db import Database
from broker.rentals.billing import SECONDS_PER_HOUR, Billing
from broker.rentals.lifecycle import Action, RentalStatus
from broker.rentals.tables import Rental
from pricing.dbtypes import table_of
from providers.base import ProviderError
from providers.rental import Workload, WorkloadMode

MAX_DURATION, MAX_COST, IDLE = "max_duration", "max_cost", "idle"
BUDGET = "budget"  # the account's monthly budget, ended like a rental out of credit
# What ending a rental for each limit does: terminate, or stop where the provider can stop.
END_BY = {
    MAX_DURATION: Action.TERMINATE,
    MAX_COST: Action.TERMINATE,
    IDLE: Action.STOP,
    BUDGET: Action.STOP,
}


@dataclass(frozen=True)
class RentalLimits:
    """The limits a rent asked for (micro-dollars for `max_cost`); None where not asked."""

    max_duration_seconds: int | None = None
    max_cost: int | None = None
    idle_timeout_seconds: int | None = None

    def json(self) -> dict[str, int]:
        """The limits that are set, for the stored request body."""
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class Capped:
    """A tick's billing after the limits: the new state, the amount, the limit reached (if any)."""

    after: Billing
    amount: int
    reached: str | None = None


def capped(
    price_per_hour: int,
    before: Billing,
    seen: datetime,
    *,
    earlier_seconds: int = 0,
    earlier_charged: int = 0,
    max_duration_seconds: int | None = None,
    max_cost: int | None = None,
) -> Capped:
    """Bill up to `seen`, but no second past `max_duration_seconds` nor a micro-dollar past
    `max_cost` (both over the rental's whole life: `earlier_*` are its earlier placements)."""
    reached: str | None = None
    if max_duration_seconds is not None:
        left = max(0, max_duration_seconds - earlier_seconds - before.billed_seconds)
        end = before.billed_until + timedelta(seconds=left)
        if seen >= end:
            seen, reached = end, MAX_DURATION
    after, amount = before.advance(price_per_hour, seen)
    if max_cost is not None:
        room = max(0, max_cost - earlier_charged - before.charged)
        if amount >= room:
            # The second the cost reaches the limit; that second is billed only in part.
            owed = max_cost - earlier_charged
            second = -(-owed * SECONDS_PER_HOUR // price_per_hour) if price_per_hour else 0
            seconds = min(after.billed_seconds, max(before.billed_seconds, second))
            ran = timedelta(seconds=seconds - before.billed_seconds)
            charged = before.charged + room
            after = Billing(seconds, before.billed_until + ran, charged)
            return Capped(after, room, MAX_COST)
    return Capped(after, amount, reached)


def duration_left(rental: Rental) -> int | None:
    if rental.max_duration_seconds is None:
        return None
    return max(0, rental.max_duration_seconds - rental.earlier_seconds - rental.billed_seconds)


def cost_left(rental: Rental) -> int | None:
    if rental.max_cost is None:
        return None
    return max(0, rental.max_cost - rental.earlier_charged - rental.charged)


def idle_left(rental: Rental, now: datetime) -> int | None:
    """Seconds until the rental counts as idle (None: no idle limit, or not running)."""
    if rental.idle_timeout_seconds is None or rental.running_since is None:
        return None
    if rental.status != RentalStatus.RUNNING:
        return None
    active = max(rental.last_activity_at or rental.running_since, rental.running_since)
    return max(0, rental.idle_timeout_seconds - int((now - active).total_seconds()))


def is_idle(
    timeout: int | None, running_since: datetime | None, active: datetime | None, now: datetime
) -> bool:
    """True when a running rental with an idle timeout saw no traffic for that long."""
    if timeout is None or running_since is None:
        return False
    last = max(active or running_since, running_since)
    return (now - last).total_seconds() >= timeout


@runtime_checkable
class ReportsUtilisation(Protocol):
    """A backend that can say how busy a rental's GPUs are (the self-hosted one, from NVML)."""

    def gpu_utilisation(self, handle: str) -> int | None:
        """Percent busy now; None where the devices give no reading."""
        ...


def idle_unsupported(workload: Workload, adapter: object) -> bool:
    """An idle timeout cannot be honoured on a workload reached only over SSH (no traffic goes
    through the connect proxy) where the backend reports no GPU utilisation either."""
    ssh_only = workload.mode is WorkloadMode.SSH and not workload.ports
    return ssh_only and not isinstance(adapter, ReportsUtilisation)


_rentals = table_of(Rental)
_TOUCH = (
    update(_rentals)
    .where(
        _rentals.c.id == bindparam("rid"),
        _rentals.c.idle_timeout_seconds.is_not(None),
        or_(
            _rentals.c.last_activity_at.is_(None),
            _rentals.c.last_activity_at < bindparam("at"),
        ),
    )
    .values(last_activity_at=bindparam("at"))
)


class Activity:
    """When each rental last had traffic through the connect proxy, kept in memory.

    `touched` is called by the proxy on every request and WebSocket message: a dictionary write
    under an uncontended lock. `flush` writes what was recorded to the rentals that have an
    idle timeout (never moving a moment backwards, so replicas can flush in any order).
    """

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}

    def touched(self, rental_id: str) -> None:
        now = self._clock()
        with self._lock:
            self._seen[rental_id] = now

    def sample(self, adapters: Mapping[str, object], busy_percent: int) -> None:
        """Count a running rental with an idle timeout as active while its backend reports its
        GPUs at least `busy_percent` busy (work that never crosses the connect proxy)."""
        reporting = {n for n, a in adapters.items() if isinstance(a, ReportsUtilisation)}
        if not reporting:
            return
        with self._db.session(read_only=True) as session:
            watched = session.exec(
                select(Rental.id, Rental.provider, Rental.handle).where(
                    Rental.status == RentalStatus.RUNNING,
                    col(Rental.idle_timeout_seconds).is_not(None),
                    col(Rental.provider).in_(sorted(reporting)),
                )
            ).all()
        for rental_id, provider, handle in watched:
            adapter = adapters[provider or ""]
            assert isinstance(adapter, ReportsUtilisation)
            try:
                busy = adapter.gpu_utilisation(handle or "")
            except ProviderError:
                continue  # no reading now: the proxy's traffic alone decides
            if busy is not None and busy >= busy_percent:
                self.touched(rental_id)

    def flush(self) -> int:
        """Write the recorded moments; returns how many rentals had traffic."""
        with self._lock:
            seen, self._seen = self._seen, {}
        if seen:
            rows = [{"rid": rental_id, "at": at} for rental_id, at in seen.items()]
            with self._db.session() as session:
                session.connection().execute(_TOUCH, rows)
        return len(seen)
