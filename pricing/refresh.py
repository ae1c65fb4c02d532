"""Keeping the catalog live: one APScheduler job per provider, each on its own thread.

A provider that fails or hangs only delays its own job: the adapter's timeouts bound each call,
tenacity has already retried transient faults, and the other providers' jobs run on other
threads. Whatever goes wrong is recorded in the catalog (the provider turns stale, its last good
offers stay), never raised into the scheduler.

The refresher knows the providers only as offer sources (`pricing.source`), so the catalog side
stays below the adapters and imports none of their code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor as JobExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError

from pricing import metrics
from pricing.catalog import Catalog
from pricing.history import PriceHistory
from pricing.source import OfferSource, SourceError

log = logging.getLogger("gpubroker.refresh")


class Refresher:
    """Fetches each provider's offers into the catalog, now or on a schedule."""

    def __init__(
        self,
        catalog: Catalog,
        adapters: Mapping[str, OfferSource],
        history: PriceHistory | None = None,
        *,
        interval_seconds: float = 60.0,
        jitter_seconds: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.catalog = catalog
        self.adapters = dict(adapters)
        self.history = history
        self.interval_seconds = interval_seconds
        self.jitter_seconds = jitter_seconds
        self._clock = clock
        self._scheduler: BackgroundScheduler | None = None

    def refresh(self, provider: str) -> bool:
        """Refresh one provider; True when its offers were replaced."""
        adapter = self.adapters[provider]
        started = time.perf_counter()
        try:
            page = adapter.list_offers()
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
        fetched_at = self._clock()
        offers = self.catalog.replace_offers(
            provider, list(page.offers), fetched_at, skipped=len(page.skipped)
        )
        log.info(
            "refreshed %s: %d offers, %d items skipped", provider, len(offers), len(page.skipped)
        )
        if self.history is not None:
            try:
                self.history.record(offers, fetched_at)
            except SQLAlchemyError:
                log.exception("could not store the price history of %s", provider)
        return True

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
        scheduler = BackgroundScheduler(
            executors={"default": JobExecutor(max_workers=len(self.adapters) + 1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
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
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for adapter in self.adapters.values():
            adapter.close()
