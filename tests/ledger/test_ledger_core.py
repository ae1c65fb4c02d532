"""The ledger's functional core: which entries a request produces, or why it is refused."""

from __future__ import annotations

import pytest

from broker.api.errors import status_of
from broker.ledger_core import (
    EFFECTS,
    Balances,
    InsufficientCredit,
    plan_charge,
    plan_hold,
    plan_release,
    plan_settle,
    run_moves,
)


def test_each_kind_moves_balance_and_held_as_documented() -> None:
    start = Balances(balance=100, held=40)
    assert start.apply("topup", 10) == Balances(110, 40)
    assert start.apply("grant", 10) == Balances(110, 40)
    assert start.apply("hold", 10) == Balances(100, 50)
    assert start.apply("charge", 10) == Balances(90, 30)
    assert start.apply("release", 10) == Balances(100, 30)
    assert set(EFFECTS) == {"topup", "grant", "hold", "release", "charge"}


def test_a_hold_that_does_not_fit_names_the_missing_amount() -> None:
    with pytest.raises(InsufficientCredit) as refused:
        run_moves(Balances(balance=10_000_000, held=7_000_000), plan_hold(4_500_000))
    assert refused.value.missing == 1_500_000
    assert refused.value.available == 3_000_000
    assert status_of(refused.value) == 402
    assert refused.value.extra["missing"] == "1.500000"
    assert "1.500000" in refused.value.message


def test_a_hold_that_fits_exactly_leaves_nothing_available() -> None:
    steps = run_moves(Balances(5, 0), plan_hold(5))
    assert steps == [(("hold", 5), Balances(5, 5))]


def test_a_charge_within_the_hold_only_captures() -> None:
    assert [m for m, _ in run_moves(Balances(100, 30), plan_charge(30, 20))] == [("charge", 20)]


def test_a_charge_beyond_the_hold_sets_the_excess_aside_first() -> None:
    steps = run_moves(Balances(100, 30), plan_charge(30, 50))
    assert [m for m, _ in steps] == [("hold", 20), ("charge", 50)]
    assert steps[-1][1] == Balances(50, 0)


def test_a_charge_beyond_hold_and_available_is_refused() -> None:
    with pytest.raises(InsufficientCredit) as refused:
        run_moves(Balances(40, 30), plan_charge(30, 50))
    assert refused.value.missing == 10


def test_settle_captures_and_releases_the_rest() -> None:
    steps = run_moves(Balances(100, 30), plan_settle(30, 12))
    assert [m for m, _ in steps] == [("charge", 12), ("release", 18)]
    assert steps[-1][1] == Balances(88, 0)


def test_settle_for_nothing_is_a_release() -> None:
    assert plan_settle(30, 0)[-1] == ("release", 30)
    assert [m for m, _ in run_moves(Balances(30, 30), plan_settle(30, 0))] == [("release", 30)]
    assert plan_release(30) == [("release", 30)]


@pytest.mark.parametrize("amount", [-1, 1.5, True, "5"])
def test_amounts_are_non_negative_integers(amount: object) -> None:
    with pytest.raises(ValueError):
        plan_hold(amount)  # type: ignore[arg-type]
