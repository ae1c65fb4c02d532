"""Price history: a point each time an offer's price changes, written by the refresh.

Only changes are stored (plus the first sighting of an offer), so a year of one-minute refreshes
of a steady catalog costs one row per offer. The last known price per offer is kept in memory,
loaded once from the database, so a refresh compares in memory and writes only what moved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from broker.models import PricePoint
from pricing.offer import Offer

log = logging.getLogger("gpubroker.pricing")


class SessionFactory(Protocol):
    def session(self) -> Session: ...


class PriceHistory:
    """Records price change points; one instance per process."""

    def __init__(self, db: SessionFactory) -> None:
        self._db = db
        self._last: dict[str, int] | None = None
        self._lock = threading.Lock()

    def record(self, offers: Sequence[Offer], at: datetime) -> int:
        """Store a point for each offer whose price moved since its last point; return the count."""
        with self._lock:
            last = self._last if self._last is not None else self._load()
            changed = [o for o in offers if last.get(o.id) != o.price_per_gpu_hour]
            if not changed:
                return 0
            rows = [
                {
                    "offer_id": o.id,
                    "provider": o.provider,
                    "gpu": o.gpu,
                    "region": o.region,
                    "tier": o.tier.value,
                    "price": o.price_per_gpu_hour,
                    "at": at,
                }
                for o in changed
            ]
            with self._db.session() as session:
                session.execute(insert(PricePoint), rows)
                session.commit()
            for o in changed:
                last[o.id] = o.price_per_gpu_hour
            return len(changed)

    def _load(self) -> dict[str, int]:
        latest = (
            select(PricePoint.offer_id, func.max(PricePoint.at).label("at"))
            .group_by(PricePoint.offer_id)
            .subquery()
        )
        query = select(PricePoint.offer_id, PricePoint.price).join(
            latest, (PricePoint.offer_id == latest.c.offer_id) & (PricePoint.at == latest.c.at)
        )
        with self._db.session() as session:
            self._last = {offer_id: price for offer_id, price in session.execute(query)}
        log.info("price history: %d offers with a known price", len(self._last))
        return self._last
