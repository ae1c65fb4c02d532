"""Reading and pruning the price history, on SQLite and PostgreSQL.

Points are written by `PriceHistory.record`, the refresh's own writer, at chosen times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from broker.app import create_app
from broker.db import Database
from broker.settings import CoreSettings
from pricing.history import (
    PRUNE_EVERY_SECONDS,
    PRUNE_JOB,
    HistoryQuery,
    InvalidCursor,
    PriceHistory,
    prune_history,
    query_history,
    schedule_pruning,
)
from pricing.history_table import PricePoint
from pricing.offer import Offer, Tier
from tests.catalog_data import offer

T0 = datetime(2026, 11, 1, tzinfo=UTC)

A = offer("alpha:4090:spot", "alpha", "RTX 4090", 0, tier=Tier.SPOT, region="Quebec, CA")
B = offer("beta:4090:spot", "beta", "RTX 4090", 0, tier=Tier.SPOT, region="EU")
C = offer("alpha:4090:od", "alpha", "RTX 4090", 0)
H = offer("alpha:h100:spot", "alpha", "H100 SXM", 0, tier=Tier.SPOT, vram_gb=80)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def record(history: PriceHistory, hours: float, *changes: tuple[Offer, int]) -> None:
    history.record([replace(o, price_per_gpu_hour=price) for o, price in changes], at(hours))


@pytest.fixture
def history(database: Database) -> PriceHistory:
    """A: 300 @0h, 290 @10h, 280 @20h. B: 400 @0h, 380 @20h. C: 500 @0h. H: 2000 @5h."""
    writer = PriceHistory(database)
    record(writer, 0, (A, 300), (B, 400), (C, 500))
    record(writer, 5, (H, 2000))
    record(writer, 10, (A, 290))
    record(writer, 20, (A, 280), (B, 380))
    return writer


def fetch(database: Database, **filters: object) -> list[tuple[str, int, datetime]]:
    page = query_history(database, HistoryQuery(**filters))  # type: ignore[arg-type]
    return [(p.offer_id, p.price, p.at) for p in page.points]


def test_points_come_oldest_first_with_their_fields(
    database: Database, history: PriceHistory
) -> None:
    page = query_history(database, HistoryQuery(gpus={"H100 SXM"}))
    assert [(p.provider, p.gpu, p.region, p.tier, p.price, p.at) for p in page.points] == [
        ("alpha", "H100 SXM", "US", Tier.SPOT, 2000, at(5))
    ]
    assert page.next_cursor is None
    everything = fetch(database)
    assert [moment for _, _, moment in everything] == sorted(m for _, _, m in everything)
    assert len(everything) == 7


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"gpus": {"RTX 4090"}, "tier": Tier.ON_DEMAND}, [("alpha:4090:od", 500)]),
        ({"providers": ("beta",)}, [("beta:4090:spot", 400), ("beta:4090:spot", 380)]),
        (
            {"gpus": {"RTX 4090"}, "tier": Tier.SPOT, "until": at(0)},
            [("alpha:4090:spot", 300), ("beta:4090:spot", 400)],
        ),
    ],
)
def test_filters_stack(
    database: Database,
    history: PriceHistory,
    filters: dict[str, object],
    expected: list[tuple[str, int]],
) -> None:
    narrowed = {"limit": 2, **filters}
    assert [(offer_id, price) for offer_id, price, _ in fetch(database, **narrowed)] == expected


def test_the_offers_of_a_table_of_any_size_select_the_points(
    database: Database, history: PriceHistory
) -> None:
    # More ids than PostgreSQL takes as parameters of one statement.
    shown = {A.id, H.id} | {f"gone:{n}" for n in range(70_000)}
    found = fetch(database, offer_ids=shown, since=at(15), limit=500)
    assert [(offer_id, price) for offer_id, price, _ in found] == [
        ("alpha:h100:spot", 2000),
        ("alpha:4090:spot", 290),
        ("alpha:4090:spot", 280),
    ]
    assert fetch(database, offer_ids=set()) == []


def test_a_range_starts_with_each_offers_last_point_before_since(
    database: Database, history: PriceHistory
) -> None:
    points = fetch(database, gpus={"RTX 4090"}, tier=Tier.SPOT, since=at(15))
    assert points == [
        ("beta:4090:spot", 400, at(0)),  # B did not move between 0h and 15h
        ("alpha:4090:spot", 290, at(10)),  # not 300 @0h: 290 is A's level at 15h
        ("alpha:4090:spot", 280, at(20)),
        ("beta:4090:spot", 380, at(20)),
    ]
    assert [p[0] for p in points].count("alpha:4090:od") == 0


def test_the_level_at_since_is_given_even_when_nothing_moved_after(
    database: Database, history: PriceHistory
) -> None:
    assert fetch(database, providers=("alpha",), tier=Tier.ON_DEMAND, since=at(30)) == [
        ("alpha:4090:od", 500, at(0))
    ]
    assert fetch(database, gpus={"H100 SXM"}, since=at(5), until=at(6)) == [
        ("alpha:h100:spot", 2000, at(5))
    ]


def test_paging_returns_every_point_once_in_order_across_equal_times(
    database: Database, history: PriceHistory
) -> None:
    seen: list[tuple[str, int, datetime]] = []
    cursor = None
    pages = 0
    while True:
        page = query_history(database, HistoryQuery(since=at(1), limit=2, cursor=cursor))
        seen += [(p.offer_id, p.price, p.at) for p in page.points]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == fetch(database, since=at(1), limit=500)
    assert len(seen) == len(set(seen)) == 7
    assert pages == 4


def test_a_foreign_cursor_is_refused(database: Database, history: PriceHistory) -> None:
    for cursor in ("garbage!", "bm90LWEtY3Vyc29y", "MjAyNi0xMS0wMVQwMDowMDowMHwx"):
        with pytest.raises(InvalidCursor):
            query_history(database, HistoryQuery(cursor=cursor))


def test_pruning_keeps_each_offers_last_point_before_the_cutoff(
    database: Database, history: PriceHistory
) -> None:
    deleted = prune_history(database, cutoff=at(15))
    assert deleted == 1  # A's 300 @0h: superseded by A's 290 @10h before the cutoff
    remaining = fetch(database, limit=500)
    assert ("alpha:4090:spot", 300, at(0)) not in remaining
    assert len(remaining) == 6
    assert prune_history(database, cutoff=at(15)) == 0


def test_after_pruning_every_offer_keeps_its_current_price(
    database: Database, history: PriceHistory
) -> None:
    prune_history(database, cutoff=at(100))
    with database.session() as session:
        kept = {p.offer_id: p.price for p in session.exec(select(PricePoint)).all()}
    assert kept == {
        "alpha:4090:spot": 280,
        "beta:4090:spot": 380,
        "alpha:4090:od": 500,
        "alpha:h100:spot": 2000,
    }
    fresh = PriceHistory(database)
    record(fresh, 200, (A, 280), (B, 380))
    assert len(fetch(database, limit=500)) == 4  # unchanged prices record nothing new


class RecordingJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[Callable[[], object], float]] = {}

    def add(self, name: str, func: Callable[[], object], every_seconds: float) -> None:
        self.jobs[name] = (func, every_seconds)


def test_the_daily_job_prunes_past_the_retention(database: Database, history: PriceHistory) -> None:
    jobs = RecordingJobs()
    schedule_pruning(jobs, database, retention_days=1, clock=lambda: at(15) + timedelta(days=1))
    func, every = jobs.jobs[PRUNE_JOB]
    assert every == PRUNE_EVERY_SECONDS == 86_400
    func()
    assert len(fetch(database, limit=500)) == 6


def test_the_app_registers_the_pruning_job_with_its_retention_setting(
    make_settings: Callable[..., CoreSettings], static_providers: dict[str, object]
) -> None:
    app = create_app(
        make_settings(price_history_retention_days=30), adapters=static_providers, start_jobs=False
    )
    db: Database = app.state.db
    now = datetime.now(UTC)
    writer = PriceHistory(db)
    record_at = [(now - timedelta(days=45), 300), (now - timedelta(days=40), 310)]
    for moment, price in record_at:
        writer.record([replace(A, price_per_gpu_hour=price)], moment)
    writer.record([replace(B, price_per_gpu_hour=400)], now - timedelta(days=1))
    assert app.state.jobs.run_once(PRUNE_JOB)
    with db.session() as session:
        left = sorted((p.offer_id, p.price) for p in session.exec(select(PricePoint)).all())
    assert left == [("alpha:4090:spot", 310), ("beta:4090:spot", 400)]
