"""The rental lifecycle as a pure state machine: statuses, events and the one table between them.

A rental is always in one of six public statuses. Three are live (`provisioning`, `running`,
`stopped`: an instance exists or is being made, and a credit hold may be open); three are final
(`interrupted`, `terminated`, `failed`), except that a spot rental that asked to `recover` leaves
`interrupted` when it is placed again. Every change of status is an `Event`, and `TRANSITIONS`
says, for each event, which status it moves to which. Nothing else in the broker decides a
status: every path (the user's actions, the status job, the meter, reconciliation) asks `advance`
while it holds the rental's row lock, so two paths that race read the same row, in turn, and the
second sees what the first did.

A user's `start`, `stop` or `terminate` calls the provider outside any transaction. So that a
second action arriving meanwhile neither places a second hold nor calls the provider twice, the
first one marks itself in flight on the row (under the lock) before it calls out, and clears the
mark when it records the outcome. `decide` is the pure rule for an action that arrives: go ahead,
answer with the rental as it is (a replay: stopping a stopped rental, terminating an ended one),
or refuse with a conflict (another action is under way, or the status does not allow it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class RentalStatus(StrEnum):
    PROVISIONING = "provisioning"
    RUNNING = "running"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    TERMINATED = "terminated"
    FAILED = "failed"


LIVE = frozenset({RentalStatus.PROVISIONING, RentalStatus.RUNNING, RentalStatus.STOPPED})
FINAL = frozenset(RentalStatus) - LIVE


class Event(StrEnum):
    STARTED = "started"  # the provider reports the instance running
    STOP = "stop"  # stopped by the user, for lack of credit, or at the provider
    START = "start"  # a stopped rental is started again (a new hold is placed)
    START_FAILED = "start_failed"  # the provider would not start it; its hold is given back
    TERMINATE = "terminate"  # ended by the user, or gone at the provider
    FAIL = "fail"  # the placement or the workload failed
    INTERRUPT = "interrupt"  # a spot instance was lost (or its recovery found nothing)
    RECOVER = "recover"  # an interrupted spot rental is placed again


_S = RentalStatus
TRANSITIONS: Mapping[Event, Mapping[RentalStatus, RentalStatus]] = MappingProxyType(
    {
        Event.STARTED: {_S.PROVISIONING: _S.RUNNING, _S.RUNNING: _S.RUNNING},
        Event.STOP: {_S.RUNNING: _S.STOPPED},
        Event.START: {_S.STOPPED: _S.PROVISIONING},
        Event.START_FAILED: {_S.PROVISIONING: _S.STOPPED},
        Event.TERMINATE: {status: _S.TERMINATED for status in LIVE},
        Event.FAIL: {_S.PROVISIONING: _S.FAILED, _S.RUNNING: _S.FAILED},
        Event.INTERRUPT: {_S.PROVISIONING: _S.INTERRUPTED, _S.RUNNING: _S.INTERRUPTED},
        Event.RECOVER: {_S.INTERRUPTED: _S.PROVISIONING},
    }
)

# The event that ends a rental in each status a caller may ask `close` for.
ENDING: Mapping[RentalStatus, Event] = MappingProxyType(
    {
        _S.STOPPED: Event.STOP,
        _S.TERMINATED: Event.TERMINATE,
        _S.FAILED: Event.FAIL,
        _S.INTERRUPTED: Event.INTERRUPT,
    }
)


class IllegalTransition(ValueError):
    """`event` cannot happen to a rental in `status`."""

    def __init__(self, status: str, event: Event) -> None:
        super().__init__(f"a {status} rental cannot {event.value}")
        self.status = status
        self.event = event


def can(status: str, event: Event) -> bool:
    return RentalStatus(status) in TRANSITIONS[event]


def advance(status: str, event: Event) -> RentalStatus:
    """The status after `event`, or IllegalTransition."""
    target = TRANSITIONS[event].get(RentalStatus(status))
    if target is None:
        raise IllegalTransition(status, event)
    return target


class Action(StrEnum):
    """What a user (or the meter) asks of a rental that involves a provider call."""

    START = "start"
    STOP = "stop"
    TERMINATE = "terminate"


# For each action: the event it applies, and the statuses in which it is already done (a replay).
ACTIONS: Mapping[Action, tuple[Event, frozenset[RentalStatus]]] = MappingProxyType(
    {
        Action.START: (Event.START, frozenset()),
        Action.STOP: (Event.STOP, frozenset({_S.STOPPED})),
        Action.TERMINATE: (Event.TERMINATE, FINAL),
    }
)


@dataclass(frozen=True)
class Decision:
    """`proceed`, `replay` (answer with the rental as it is) or a conflict with its reason."""

    outcome: str
    reason: str = ""

    @property
    def proceed(self) -> bool:
        return self.outcome == "proceed"

    @property
    def replay(self) -> bool:
        return self.outcome == "replay"


def decide(status: str, in_flight: str | None, action: Action) -> Decision:
    """Whether `action` may begin on a rental in `status` with `in_flight` (or no) action."""
    event, done = ACTIONS[action]
    if in_flight is not None:
        return Decision("conflict", f"a {in_flight} of this rental is under way; retry shortly")
    if RentalStatus(status) in done:
        return Decision("replay")
    if can(status, event):
        return Decision("proceed")
    allowed = " or ".join(sorted(s.value for s in TRANSITIONS[event]))
    return Decision("conflict", f"the rental is {status}; only a {allowed} rental can {action}")
