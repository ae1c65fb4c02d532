"""The ledger's functional core: which entries a request produces, or why it is refused.

Each kind of entry has a fixed effect on an account's balance and held amount (`EFFECTS`); a
request becomes a plan, a list of moves (`plan_hold`, `plan_charge`, `plan_settle`,
`plan_release`), and `run_moves` replays a plan over the current `Balances`, refusing one that
would overdraw the account with `InsufficientCredit`. Nothing here reads or writes the database:
`broker.ledger` locks the state, asks this core, and writes what it decided, and the batched
meter (`broker.ledger_batch`) asks the same core for thousands of rentals at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from broker.domain_errors import Conflict, DomainError, NotFound
from pricing.money import format_usd

Kind = Literal["topup", "grant", "hold", "release", "charge"]
Move = tuple[Kind, int]

# (sign on balance, sign on held) for each kind of entry.
EFFECTS: dict[str, tuple[int, int]] = {
    "topup": (1, 0),
    "grant": (1, 0),
    "hold": (0, 1),
    "charge": (-1, -1),
    "release": (0, -1),
}


class InsufficientCredit(DomainError):
    """The account's available credit does not cover the request; `missing` is the shortfall."""

    def __init__(self, missing: int, available: int) -> None:
        super().__init__(
            f"insufficient credit: {format_usd(missing)} USD more is needed (available "
            f"{format_usd(available)} USD); add credit to the wallet and retry",
            missing=format_usd(missing),
            available=format_usd(available),
        )
        self.missing = missing
        self.available = available


class HoldNotOpen(Conflict):
    """The hold was already settled or released; nothing was moved."""

    def __init__(self, hold_id: str, status: str) -> None:
        super().__init__(f"hold {hold_id} is already {status}")


class UnknownAccount(NotFound):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account {account_id}")


class UnknownHold(NotFound):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no hold {hold_id}")


@dataclass(frozen=True)
class Balances:
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held

    def apply(self, kind: str, amount: int) -> Balances:
        on_balance, on_held = EFFECTS[kind]
        return Balances(self.balance + on_balance * amount, self.held + on_held * amount)


def non_negative(amount: int, what: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"{what} must be a non-negative integer of micro-dollars, not {amount!r}")
    return amount


def run_moves(state: Balances, moves: Sequence[Move]) -> list[tuple[Move, Balances]]:
    """Each non-zero move with the state after it; refuses a plan that overdraws the account."""
    steps: list[tuple[Move, Balances]] = []
    for kind, amount in moves:
        if amount == 0:
            continue
        after = state.apply(kind, amount)
        if after.available < 0:
            raise InsufficientCredit(-after.available, state.available)
        if after.held < 0:
            raise ValueError(f"{kind} of {amount} would make the held amount negative")
        steps.append(((kind, amount), after))
        state = after
    return steps


def plan_hold(amount: int) -> list[Move]:
    return [("hold", non_negative(amount, "a hold"))]


def plan_charge(hold_held: int, amount: int) -> list[Move]:
    """Capture `amount`: from the hold first, any excess set aside from available credit."""
    non_negative(amount, "a charge")
    return [("hold", max(0, amount - hold_held)), ("charge", amount)]


def plan_settle(hold_held: int, final_charge: int) -> list[Move]:
    """Capture `final_charge` and give back whatever remains set aside."""
    moves = plan_charge(hold_held, final_charge)
    remaining = max(hold_held, final_charge) - final_charge
    return [*moves, ("release", remaining)]


def plan_release(hold_held: int) -> list[Move]:
    return [("release", hold_held)]


def hold_totals(held: int, captured: int, moves: Iterable[tuple[str, int]]) -> tuple[int, int]:
    """A hold's (held, captured) after `moves`: its held amount changes as the account's does."""
    for kind, amount in moves:
        held += EFFECTS[kind][1] * amount
        captured += amount if kind == "charge" else 0
    return held, captured
