"""A week of price history for a fresh demo, so its charts draw lines rather than a few dots.

Generated once, when the demo starts on a database with no history older than the first refresh:
for every offer then in the catalog, change points walk back a week from its current price.
On-demand prices move rarely and little; spot prices move every few hours, and now and then a
provider reclaims capacity: the spot price jumps for a few hours (the interruptions a spot user
would have lived through) and settles back. Every point lies before the first refresh's own
points, so each offer's last point is still its price now and the charts end where the tables
are. Everything random comes from one seeded `random.Random`: a seed gives the same week.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlmodel import col

from broker.db import Database
from pricing.history_table import PricePoint
from pricing.offer import Offer, Tier

WEEK = timedelta(days=7)
# Hours between two moves, and the largest relative step of one move, per tier.
_STEP_HOURS = {Tier.ON_DEMAND: (12.0, 40.0), Tier.SPOT: (1.0, 6.0)}
_STEP_SIZE = {Tier.ON_DEMAND: 0.03, Tier.SPOT: 0.08}
# A spot move is a reclaim (a jump of 30-90% for one step) this often.
RECLAIM_CHANCE = 0.06
# Prices stay within this band around the current one.
_BAND = (0.6, 1.6)


def walk(offer: Offer, end: datetime, rng: random.Random) -> list[tuple[datetime, int]]:
    """An offer's earlier change points, oldest first, all before `end`, within a week of it."""
    low_hours, high_hours = _STEP_HOURS[offer.tier]
    now_price = offer.price_per_gpu_hour
    points: list[tuple[datetime, int]] = []
    at, level = end, float(now_price)
    while True:
        at -= timedelta(hours=rng.uniform(low_hours, high_hours))
        if at <= end - WEEK:
            break
        if offer.tier is Tier.SPOT and rng.random() < RECLAIM_CHANCE:
            price = level * rng.uniform(1.3, 1.9)
        else:
            level *= 1 + rng.uniform(-_STEP_SIZE[offer.tier], _STEP_SIZE[offer.tier])
            level = min(max(level, now_price * _BAND[0]), now_price * _BAND[1])
            price = level
        points.append((at, max(100, int(round(price, -2)))))
    points.reverse()
    return points


def seed_history(db: Database, offers: Sequence[Offer], seed: int) -> int:
    """Write a week of history before each offer was first seen (`updated_at`, the first
    refresh) unless the database holds older points already; the count written."""
    if not offers:
        return 0
    first_refresh = min(offer.updated_at for offer in offers)
    with db.session() as session:
        earlier = session.execute(
            select(func.count()).select_from(PricePoint).where(col(PricePoint.at) < first_refresh)
        ).scalar_one()
        if earlier:
            return 0
        rng = random.Random(seed)
        rows = [
            {
                "offer_id": offer.id,
                "provider": offer.provider,
                "gpu": offer.gpu,
                "region": offer.region,
                "tier": offer.tier.value,
                "price": price,
                "at": at,
            }
            for offer in offers
            for at, price in walk(offer, offer.updated_at, rng)
        ]
        if rows:
            session.execute(insert(PricePoint), rows)
            session.commit()
    return len(rows)
