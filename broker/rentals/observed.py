"""Observed spot interruption rates: what this broker's own spot rentals went through.

Each spot placement that ends records how long it ran and whether it was interrupted. The rate
per provider and GPU is a smoothed estimate, (interruptions + PRIOR_RATE * PRIOR_HOURS) /
(hours + PRIOR_HOURS): a 5%-per-hour prior worth ten hours of observation, so one early
interruption moves the estimate without making it absurd. As a probability of losing the
instance within the next hour it is 1 - exp(-rate).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from broker.rentals.tables import Rental, SpotObservation
from pricing.catalog import Catalog

PRIOR_RATE = 0.05
PRIOR_HOURS = 10.0


def record(session: Session, rental: Rental, until: datetime, *, interrupted: bool) -> None:
    """Note a spot placement's end (from its start of billing, or of this placement, to `until`)."""
    if rental.tier != "spot" or rental.provider is None or rental.gpu is None:
        return
    began = rental.running_since
    seconds = int((until - began).total_seconds()) if began else 0
    session.add(
        SpotObservation(
            rental_id=rental.id,
            provider=rental.provider,
            gpu=rental.gpu,
            seconds=max(0, seconds),
            interrupted=interrupted,
            at=until,
        )
    )


def rates(session: Session) -> dict[tuple[str, str], float]:
    """Hourly interruption probability per (provider, GPU) with at least one interruption."""
    statement = select(
        SpotObservation.provider,
        SpotObservation.gpu,
        func.sum(SpotObservation.seconds),
        func.sum(case((col(SpotObservation.interrupted), 1), else_=0)),
    ).group_by(SpotObservation.provider, SpotObservation.gpu)
    result: dict[tuple[str, str], float] = {}
    for provider, gpu, seconds, interruptions in session.exec(statement):
        if interruptions:
            rate = (interruptions + PRIOR_RATE * PRIOR_HOURS) / (seconds / 3600 + PRIOR_HOURS)
            result[(provider, gpu)] = 1 - math.exp(-rate)
    return result


def refresh_catalog(session: Session, catalog: Catalog) -> None:
    """Re-price the catalog with the current observed rates."""
    catalog.set_policy(replace(catalog.policy, observed_rates=rates(session)))
