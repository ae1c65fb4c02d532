"""The live catalog: each provider's last good offers, its health, and the index over all of them.

Providers are isolated from each other. A refresh replaces one provider's offers and rebuilds the
index; a failed refresh keeps that provider's last good offers, marked stale, with the error in
its status. Queries read `catalog.index`, an immutable snapshot swapped in one assignment, so a
query never waits for a refresh and never sees half of one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from itertools import islice

from pricing.index import CatalogIndex
from pricing.offer import Offer
from pricing.policy import PricingPolicy, apply_policy
from pricing.storage import Interner, same_offer
from pricing.summary import GpuRow, summarize_gpus

BATCH = 2048


class ProviderHealth(StrEnum):
    OK = "ok"
    STALE = "stale"
    ERROR = "error"


@dataclass
class ProviderState:
    """One provider's offers as last fetched, and how its refreshes are going."""

    name: str
    offers: list[Offer]
    updated_at: datetime | None = None
    refreshed_monotonic: float | None = None
    last_error: str | None = None
    skipped: int = 0

    def health(self, stale_after: float, now_monotonic: float) -> ProviderHealth:
        if self.updated_at is None:
            return ProviderHealth.ERROR if self.last_error else ProviderHealth.STALE
        age = now_monotonic - (self.refreshed_monotonic or 0.0)
        if self.last_error or age > stale_after:
            return ProviderHealth.STALE
        return ProviderHealth.OK


class Catalog:
    """Every enabled provider's offers, searchable through `index`."""

    def __init__(
        self,
        providers: Iterable[str],
        policy: PricingPolicy | None = None,
        *,
        stale_after_seconds: float = 180.0,
        gpu_key: Callable[[str], str] = str.lower,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or PricingPolicy()
        self.stale_after_seconds = stale_after_seconds
        self._gpu_key = gpu_key
        self._clock = clock
        self._states = {name: ProviderState(name, []) for name in providers}
        self._lock = threading.Lock()
        self.index = CatalogIndex([], gpu_key)
        self.gpu_rows: list[GpuRow] = []
        self.version = 0

    @property
    def provider_names(self) -> list[str]:
        return list(self._states)

    def take(self, offers: Iterable[Offer]) -> list[Offer]:
        """Price offers as they arrive, sharing what the catalog already holds.

        An offer equal to the one the catalog holds under its id (but for `updated_at`) is
        replaced by that one, so a refresh that moves 10% of the prices allocates 10% of a
        catalog, not a second one; in a new or changed offer, values of few distinct kinds (GPU,
        region, provider, `ref` values) are interned. `offers` may be a stream; it is read in
        batches.
        """
        held = self.index.get
        interner = Interner()
        taken: list[Offer] = []
        stream = iter(offers)
        while batch := list(islice(stream, BATCH)):
            apply_policy(batch, self.policy)
            for offer in batch:
                old = held(offer.id)
                if old is not None and same_offer(old, offer):
                    old.updated_at = offer.updated_at
                    taken.append(old)
                else:
                    interner.offer(offer)
                    taken.append(offer)
        return taken

    def install(
        self, provider: str, offers: list[Offer], fetched_at: datetime, *, skipped: int = 0
    ) -> None:
        """Install a successful refresh of one provider: its offers, as `take` priced them."""
        with self._lock:
            state = self._states[provider]
            state.offers = offers
            state.updated_at = fetched_at
            state.refreshed_monotonic = self._clock()
            state.last_error = None
            state.skipped = skipped
            self._rebuild()

    def record_failure(self, provider: str, error: str) -> None:
        """Keep the provider's last good offers; remember why this refresh failed."""
        with self._lock:
            self._states[provider].last_error = error
            self.version += 1

    def set_policy(self, policy: PricingPolicy) -> None:
        """Re-price every offer under a new policy (e.g. new observed interruption rates)."""
        with self._lock:
            self.policy = policy
            for state in self._states.values():
                # Fresh copies: the current index keeps serving the old objects meanwhile;
                # `take` keeps the old one wherever the new policy leaves the offer as it was.
                state.offers = self.take(replace(offer) for offer in state.offers)
            self._rebuild()

    def health(self) -> dict[str, ProviderHealth]:
        now = self._clock()
        return {
            name: state.health(self.stale_after_seconds, now)
            for name, state in self._states.items()
        }

    def status(self) -> dict[str, dict[str, object]]:
        """The `providers` block of the offers response."""
        now = self._clock()
        block: dict[str, dict[str, object]] = {}
        for name, state in self._states.items():
            entry: dict[str, object] = {
                "status": state.health(self.stale_after_seconds, now).value,
                "offers": len(state.offers),
                "updated_at": state.updated_at,
            }
            if state.last_error:
                entry["error"] = state.last_error
            if state.skipped:
                entry["skipped_items"] = state.skipped
            block[name] = entry
        return block

    def stale_providers(self) -> frozenset[str]:
        return frozenset(
            name for name, health in self.health().items() if health is not ProviderHealth.OK
        )

    def _rebuild(self) -> None:
        everything = [offer for state in self._states.values() for offer in state.offers]
        self.index = CatalogIndex(everything, self._gpu_key)
        self.gpu_rows = summarize_gpus(everything)
        self.version += 1
