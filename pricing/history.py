"""Price history: a point each time an offer's price changes, written by the refresh.

Only changes are stored (plus the first sighting of an offer), so a year of one-minute refreshes
of a steady catalog costs one row per offer. The last known price per offer is kept in memory,
loaded once from the database, so a refresh compares in memory and writes only what moved.

Because only changes are stored, an offer's price at a moment is its last point at or before
that moment. Two rules follow from it, both here:

- A query over a time range also returns, for each offer it matches, that offer's last point
  before `since`: without it a chart of a steady price over the last day would be empty, and a
  moving one would start at the wrong level.
- Pruning deletes points older than the retention period except each offer's last one before
  the cutoff, so an offer whose price has not moved for longer than that keeps its level.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from pricing.history_table import PricePoint
from pricing.offer import Offer, Tier

log = logging.getLogger("gpubroker.pricing")

PRUNE_JOB = "prune-price-history"
PRUNE_EVERY_SECONDS = 24 * 3600
MAX_LIMIT = 500


class SessionFactory(Protocol):
    def session(self, *, read_only: bool = False) -> AbstractContextManager[Session]: ...


class JobRegistry(Protocol):
    def add(self, name: str, func: Callable[[], object], every_seconds: float) -> None: ...


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
            select(col(PricePoint.offer_id), func.max(col(PricePoint.at)).label("at"))
            .group_by(col(PricePoint.offer_id))
            .subquery()
        )
        query = select(col(PricePoint.offer_id), col(PricePoint.price)).join(
            latest,
            (col(PricePoint.offer_id) == latest.c.offer_id) & (col(PricePoint.at) == latest.c.at),
        )
        with self._db.session() as session:
            self._last = {offer_id: price for offer_id, price in session.execute(query)}
        log.info("price history: %d offers with a known price", len(self._last))
        return self._last


# Reading the history


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One recorded price: the offer's price per GPU-hour (micro-dollars) from `at` on."""

    offer_id: str
    provider: str
    gpu: str
    region: str
    tier: Tier
    price: int
    at: datetime


@dataclass(frozen=True)
class HistoryQuery:
    """Filters that stack; `gpus` holds canonical names (None: every GPU).

    `offer_ids` (None: any) keeps the points of those offers only: the API passes the offers its
    table shows now for the same filters (region, availability and slices among them), so a
    chart draws exactly what the table lists.
    """

    gpus: Collection[str] | None = None
    offer_ids: Collection[str] | None = None
    providers: Collection[str] = ()
    tier: Tier | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class HistoryPage:
    points: list[HistoryPoint] = field(default_factory=list)
    next_cursor: str | None = None


class InvalidCursor(ValueError):
    """A cursor that the history endpoint did not issue."""


def encode_cursor(at: datetime, point_id: int) -> str:
    raw = f"{at.astimezone(UTC).isoformat()}|{point_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, id_text = raw.split("|", 1)
        at, point_id = datetime.fromisoformat(at_text), int(id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("cursor is not one this endpoint returned") from exc
    # Only what encode_cursor writes: an aware time in this era, a 64-bit point id.
    if at.tzinfo is None or not 1970 <= at.year < 3000 or not 0 <= point_id < 2**63:
        raise InvalidCursor("cursor is not one this endpoint returned")
    return at, point_id


def _filters(query: HistoryQuery) -> list[ColumnElement[bool]]:
    """The conditions other than time: they select the offers a query is about."""
    conditions: list[ColumnElement[bool]] = []
    if query.offer_ids is not None:
        # Written into the statement, not bound one parameter per id: a large catalog's table
        # would pass PostgreSQL's limit of 65,535 parameters.
        ids: BindParameter[list[str]] = bindparam(
            "offer_ids", sorted(query.offer_ids), expanding=True, literal_execute=True
        )
        conditions.append(col(PricePoint.offer_id).in_(ids))
    if query.gpus is not None:
        conditions.append(col(PricePoint.gpu).in_(sorted(query.gpus)))
    if query.providers:
        conditions.append(col(PricePoint.provider).in_(sorted(query.providers)))
    if query.tier is not None:
        conditions.append(col(PricePoint.tier) == query.tier.value)
    return conditions


def _in_time_range(query: HistoryQuery, matching: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """Points inside [since, until], plus each matching offer's last point before `since`."""
    window: list[ColumnElement[bool]] = []
    if query.since is not None:
        window.append(col(PricePoint.at) >= query.since)
    if query.until is not None:
        window.append(col(PricePoint.at) <= query.until)
    if query.since is None:
        return and_(true(), *window)
    ranked = (
        select(
            col(PricePoint.id),
            func.row_number()
            .over(
                partition_by=col(PricePoint.offer_id),
                order_by=(col(PricePoint.at).desc(), col(PricePoint.id).desc()),
            )
            .label("rank"),
        )
        .where(*matching, col(PricePoint.at) < query.since)
        .subquery()
    )
    level_at_since = select(ranked.c.id).where(ranked.c.rank == 1)
    return or_(and_(*window), col(PricePoint.id).in_(level_at_since))


def query_history(db: SessionFactory, query: HistoryQuery) -> HistoryPage:
    """One page of matching points, oldest first, after the query's cursor."""
    matching = _filters(query)
    statement = select(PricePoint).where(*matching, _in_time_range(query, matching))
    if query.cursor:
        after_at, after_id = decode_cursor(query.cursor)
        statement = statement.where(
            or_(
                col(PricePoint.at) > after_at,
                and_(col(PricePoint.at) == after_at, col(PricePoint.id) > after_id),
            )
        )
    statement = statement.order_by(col(PricePoint.at), col(PricePoint.id)).limit(query.limit + 1)
    with db.session(read_only=True) as session:
        rows = list(session.execute(statement).scalars())
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        next_cursor = encode_cursor(last.at, last.id or 0)
    return HistoryPage([_point(row) for row in page], next_cursor)


def _point(row: PricePoint) -> HistoryPoint:
    """A stored row as a point; the fields are the table's columns but its id, in order."""
    return HistoryPoint(
        row.offer_id, row.provider, row.gpu, row.region, Tier(row.tier), row.price, row.at
    )


# Retention


def prune_history(db: SessionFactory, cutoff: datetime) -> int:
    """Delete points older than `cutoff`, keeping each offer's last one before it; the count."""
    newer = aliased(PricePoint)
    superseded = exists().where(
        col(newer.offer_id) == col(PricePoint.offer_id),
        col(newer.at) < cutoff,
        or_(
            col(newer.at) > col(PricePoint.at),
            and_(col(newer.at) == col(PricePoint.at), col(newer.id) > col(PricePoint.id)),
        ),
    )
    with db.session() as session:
        result = session.execute(delete(PricePoint).where(col(PricePoint.at) < cutoff, superseded))
    deleted = int(getattr(result, "rowcount", 0) or 0)
    log.info("price history: pruned %d points older than %s", deleted, cutoff.isoformat())
    return deleted


def schedule_pruning(
    jobs: JobRegistry,
    db: SessionFactory,
    retention_days: int,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Register the daily job that keeps `retention_days` of history."""
    retention = timedelta(days=retention_days)
    jobs.add(PRUNE_JOB, lambda: prune_history(db, clock() - retention), PRUNE_EVERY_SECONDS)
