"""Keeping the catalog live: one APScheduler job per provider, each on its own thread.

A provider that fails or hangs only delays its own job: the adapter's timeouts bound each call,
tenacity has already retried transient faults, and the other providers' jobs run on other
threads. Whatever goes wrong is recorded in the catalog (the provider turns stale, its last good
offers stay), never raised into the scheduler.

The refresher knows the providers only as offer sources (`pricing.source`), so the catalog side
stays below the adapters and imports none of their code.

A refresh never takes the interpreter from the queries for long: a source that streams hands its
offers over as its answer arrives (never the whole answer at once), they are priced and shared
with the held catalog in batches (`Catalog.take`), the index is built in bounded steps, and the
garbage collector is kept from walking the catalog (`pricing.storage`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from pricing import metrics
from pricing.catalog import Catalog
from pricing.history import PriceHistory
from pricing.offer import Offer
from pricing.source import OfferSource, SourceError, StreamingOfferSource
from pricing.storage import collector_paused

log = logging.getLogger("gpubroker.refresh")


def background_scheduler(workers: int) -> BackgroundScheduler:
    """A scheduler of interval jobs on `workers` threads: a job that overruns its interval is
    not started again meanwhile, and missed runs collapse into one."""
    return BackgroundScheduler(
        executors={"default": JobExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Refresher:
    """Fetches each provider's offers into the catalog, now or on a schedule."""

    catalog: Catalog
    adapters: Mapping[str, OfferSource]
    history: PriceHistory | None = None
    _: KW_ONLY
    interval_seconds: float = 60.0
    jitter_seconds: float = 5.0
    clock: Callable[[], datetime] = _now
    _scheduler: BackgroundScheduler | None = field(default=None, init=False, repr=False)

    def refresh(self, provider: str) -> bool:
        """Refresh one provider; True when its offers were replaced."""
        adapter = self.adapters[provider]
        started = time.perf_counter()
        skipped: list[str] = []
        try:
            with collector_paused():
                offers = self._take(adapter, skipped)
                fetched_at = self.clock()
                self.catalog.install(provider, offers, fetched_at, skipped=len(skipped))
        except SourceError as exc:
            log.warning("refresh of %s failed: %s", provider, exc.message)
            self._observe_failure(provider, "provider", started)
            self.catalog.record_failure(provider, exc.message)
            return False
        except Exception:  # one faulty adapter must not stop the refresh of the others
            log.exception("refresh of %s raised an unexpected error", provider)
            self._observe_failure(provider, "unexpected", started)
            self.catalog.record_failure(provider, "unexpected error while reading the catalog")
            return False
        metrics.REFRESH_SECONDS.labels(provider, "ok").observe(time.perf_counter() - started)
        log.info("refreshed %s: %d offers, %d items skipped", provider, len(offers), len(skipped))
        if self.history is not None:
            try:
                self.history.record(offers, fetched_at)
            except SQLAlchemyError:
                log.exception("could not store the price history of %s", provider)
        return True

    def _take(self, adapter: OfferSource, skipped: list[str]) -> list[Offer]:
        """The source's offers, priced; streamed as they arrive where the source can."""
        if isinstance(adapter, StreamingOfferSource):
            return self.catalog.take(adapter.stream_offers(skipped))
        listing = adapter.list_offers()
        skipped.extend(listing.skipped)
        return self.catalog.take(listing.offers)

    @staticmethod
    def _observe_failure(provider: str, kind: str, started: float) -> None:
        metrics.REFRESH_SECONDS.labels(provider, "error").observe(time.perf_counter() - started)
        metrics.REFRESH_ERRORS.labels(provider, kind).inc()

    @property
    def running(self) -> bool:
        """True while the refresh schedule is alive."""
        return self._scheduler is not None and self._scheduler.running

    def refresh_all(self, timeout_seconds: float | None = None) -> dict[str, bool]:
        """Refresh every provider in parallel; a provider still running at the timeout is False."""
        pool = ThreadPoolExecutor(max_workers=max(1, len(self.adapters)))
        try:
            futures = {name: pool.submit(self.refresh, name) for name in self.adapters}
            wait(futures.values(), timeout=timeout_seconds)
            return {name: f.done() and f.result() for name, f in futures.items()}
        finally:
            pool.shutdown(wait=False)

    def start(self) -> None:
        """Schedule every provider's refresh, the first one immediately."""
        scheduler = background_scheduler(len(self.adapters) + 1)
        now = datetime.now(UTC)
        for name in self.adapters:
            scheduler.add_job(
                self.refresh,
                "interval",
                args=[name],
                id=f"refresh:{name}",
                seconds=self.interval_seconds,
                jitter=self.jitter_seconds or None,
                next_run_time=now,
            )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        for adapter in self.adapters.values():
            adapter.close()
