"""The rental state machine on its own: the transition table and the rule for arriving actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.rentals.lifecycle import (
    ACTIONS,
    ENDING,
    FINAL,
    LIVE,
    TRANSITIONS,
    Action,
    Event,
    IllegalTransition,
    RentalStatus,
    advance,
    can,
    decide,
)
from broker.rentals.tables import LIVE_STATUSES, RENTAL_STATUSES

S = RentalStatus
TABLE = Path(__file__).resolve().parents[1] / "fixtures" / "transitions.json"

# The documented table, as data: [event, from status, to status].
EXPECTED = {
    (Event(event), S(before)): S(after)
    for event, before, after in json.loads(TABLE.read_text())["transitions"]
}


@pytest.mark.parametrize("event", list(Event))
@pytest.mark.parametrize("status", list(RentalStatus))
def test_every_pair_of_status_and_event_is_in_the_table_or_refused(
    status: RentalStatus, event: Event
) -> None:
    expected = EXPECTED.get((event, status))
    assert can(status, event) is (expected is not None)
    if expected is None:
        with pytest.raises(IllegalTransition):
            advance(status, event)
    else:
        assert advance(status.value, event) is expected


def test_the_table_is_exactly_the_documented_one() -> None:
    listed = {(e, s): t for e, moves in TRANSITIONS.items() for s, t in moves.items()}
    assert listed == EXPECTED
    with pytest.raises(TypeError):
        TRANSITIONS[Event.STOP] = {}  # type: ignore[index]


def test_final_statuses_are_left_only_by_a_spot_recovery() -> None:
    leaving = {(e, s) for (e, s) in EXPECTED if s in FINAL}
    assert leaving == {(Event.RECOVER, S.INTERRUPTED)}
    assert set(RentalStatus) == LIVE | FINAL and not LIVE & FINAL


def test_public_status_strings_are_unchanged() -> None:
    assert RENTAL_STATUSES == (
        "provisioning",
        "running",
        "stopped",
        "interrupted",
        "terminated",
        "failed",
    )
    assert LIVE_STATUSES == ("provisioning", "running", "stopped")
    assert S.RUNNING == "running" and f"{S.STOPPED}" == "stopped"


def test_each_ending_event_leads_to_its_status() -> None:
    for status, event in ENDING.items():
        assert status in set(TRANSITIONS[event].values())


@pytest.mark.parametrize(
    ("status", "in_flight", "action", "outcome"),
    [
        ("running", None, Action.STOP, "proceed"),
        ("stopped", None, Action.STOP, "replay"),
        ("provisioning", None, Action.STOP, "conflict"),
        ("terminated", None, Action.STOP, "conflict"),
        ("stopped", None, Action.START, "proceed"),
        ("running", None, Action.START, "conflict"),
        ("provisioning", None, Action.START, "conflict"),
        ("failed", None, Action.START, "conflict"),
        ("provisioning", None, Action.TERMINATE, "proceed"),
        ("running", None, Action.TERMINATE, "proceed"),
        ("stopped", None, Action.TERMINATE, "proceed"),
        ("terminated", None, Action.TERMINATE, "replay"),
        ("failed", None, Action.TERMINATE, "replay"),
        ("interrupted", None, Action.TERMINATE, "replay"),
        # Whatever is in flight, a second action waits for it: never a second provider call.
        ("running", "stop", Action.STOP, "conflict"),
        ("running", "stop", Action.TERMINATE, "conflict"),
        ("provisioning", "start", Action.START, "conflict"),
        ("provisioning", "start", Action.TERMINATE, "conflict"),
        ("provisioning", "start", Action.STOP, "conflict"),
        ("running", "terminate", Action.TERMINATE, "conflict"),
        ("stopped", "terminate", Action.START, "conflict"),
    ],
)
def test_an_arriving_action_proceeds_replays_or_conflicts(
    status: str, in_flight: str | None, action: Action, outcome: str
) -> None:
    decision = decide(status, in_flight, action)
    assert decision.outcome == outcome
    assert decision.proceed is (outcome == "proceed")
    assert decision.replay is (outcome == "replay")
    if outcome == "conflict":
        assert decision.reason
    if in_flight is not None:
        assert in_flight in decision.reason


def test_an_action_proceeds_exactly_where_its_event_applies() -> None:
    for action, (event, done) in ACTIONS.items():
        for status in RentalStatus:
            decision = decide(status, None, action)
            assert decision.proceed is can(status, event)
            assert decision.replay is (status in done)
            assert not (decision.proceed and decision.replay)
