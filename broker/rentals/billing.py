"""Per-second billing arithmetic: pure, integer, and exact however often the meter runs.

A rental is billed for whole seconds of running. The meter never charges "the cost of this
interval": it advances the count of billed seconds and charges the difference between the cost
of all billed seconds and what was already charged, so rounding never accumulates and a tick
that runs twice or late charges exactly the same total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SECONDS_PER_HOUR = 3600


def cost_of(price_per_hour: int, seconds: int) -> int:
    """Micro-dollars for `seconds` at `price_per_hour` (rounded down to the micro-dollar)."""
    return price_per_hour * seconds // SECONDS_PER_HOUR


def hold_for(price_per_hour: int, seconds: int) -> int:
    """Micro-dollars to set aside for `seconds` of running, rounded up: a hold never falls short."""
    return -(-price_per_hour * seconds // SECONDS_PER_HOUR)


@dataclass(frozen=True)
class Billing:
    """How far a rental has been billed."""

    billed_seconds: int
    billed_until: datetime
    charged: int

    def advance(self, price_per_hour: int, now: datetime) -> tuple[Billing, int]:
        """Bill the whole seconds up to `now`; returns the new state and the amount to charge."""
        elapsed = int((now - self.billed_until).total_seconds())
        if elapsed <= 0:
            return self, 0
        seconds = self.billed_seconds + elapsed
        total = cost_of(price_per_hour, seconds)
        after = Billing(seconds, self.billed_until + timedelta(seconds=elapsed), total)
        return after, total - self.charged
