"""What the rental services share: the database, the catalog, the backends and the clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import datetime

from broker.db import Database
from pricing.catalog import Catalog
from providers.rental import RentalProvider

Clock = Callable[[], datetime]


@dataclass
class RentalContext:
    """The parts a rental is placed with; `max_attempts` bounds the offers one placement tries."""

    db: Database
    catalog: Catalog
    adapters: Mapping[str, RentalProvider]
    clock: Clock
    _: KW_ONLY
    min_hold_seconds: int
    max_attempts: int = 6
