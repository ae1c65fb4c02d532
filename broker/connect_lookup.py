"""The broker's answers to the connect proxy's questions: keys, rentals and upstreams.

The proxy (`proxy.lookup.ConnectLookup`) knows nothing of the database or of the provider
adapters; this module is where the broker answers for it. Each answer reads the database as it is
now, in a short read-only session, and the proxy decides what to remember; the broker tells the
proxy to forget (`forward_invalidations`, fed by `broker.invalidation`) the moment a key is
revoked or a rental changes, on this replica or another. The credentials of each upstream it
resolves are handed to `broker.logs`, so that they are masked should any log line hold them.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import col, select

from broker.accounts import hash_key
from broker.credentials import sealer_of, stored_upstream
from broker.db import Database
from broker.invalidation import Change, InvalidationBus
from broker.ledger_tables import ApiKey
from broker.logs import remember_secret
from broker.rentals.limits import Activity
from broker.rentals.tables import Rental
from providers.rental import RentalProvider, Upstream
from proxy.access import Gatekeeper, Stale
from proxy.errors import provider_error
from proxy.lookup import RentalView


class BrokerLookup:
    """`ConnectLookup` over the broker's database and its rental adapters."""

    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, RentalProvider],
        activity: Activity | None = None,
    ) -> None:
        self._db = db
        self._adapters = adapters
        self._activity = activity

    def touched(self, rental_id: str) -> None:
        """Recorded in memory (`broker.rentals.limits.Activity`), written by the meter."""
        if self._activity is not None:
            self._activity.touched(rental_id)

    def key_digest(self, secret: str) -> str:
        return hash_key(secret)

    def rental(self, rental_id: str) -> RentalView | None:
        with self._db.session(read_only=True) as session:
            row = session.get(Rental, rental_id)
            if row is None:
                return None
            return RentalView(
                id=row.id,
                account_id=row.account_id,
                status=row.status,
                provider=row.provider,
                handle=row.handle,
                key_hash=row.rental_key_hash,
                ssh=row.ssh,
            )

    def account_for_key(self, digest: str) -> str | None:
        statement = select(ApiKey.account_id).where(
            ApiKey.key_hash == digest, col(ApiKey.revoked_at).is_(None)
        )
        with self._db.session(read_only=True) as session:
            return session.exec(statement).first()

    def upstream(self, view: RentalView) -> Upstream | None:
        adapter = self._adapters.get(view.provider or "")
        if adapter is None or view.handle is None:
            raise provider_error(f"provider {view.provider} is not enabled on this broker")
        # Credentials the provider gave only once are kept (sealed) on the rental: they win.
        stored = stored_upstream(self._db, sealer_of(self._db), view.id)
        upstream = stored if stored is not None else adapter.upstream(view.handle)
        if upstream is not None:  # the workload's credentials: masked in any log line
            for value in upstream.headers.values():
                remember_secret(value, value.rpartition(" ")[2])
        return upstream


def forward_invalidations(bus: InvalidationBus, gatekeeper: Gatekeeper) -> None:
    """Have the proxy forget keys and rentals as soon as a change to them commits anywhere."""

    def forget(change: Change) -> None:
        gatekeeper.invalidate(Stale(change.rentals, change.keys, everything=change.everything))

    bus.subscribe(forget)
