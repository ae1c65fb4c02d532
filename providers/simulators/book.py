"""The account book every simulated provider keeps, whatever it sells.

A simulator's state is one provider account: what it sells, what it has been asked, and the
instances started on it. The parts every provider shares live here. `AccountBook` holds the
knobs; a lock for the routes that run on worker threads (`settled` takes it and first brings
every instance up to date with the clock, as each provider's `settle` says); the count of
requests served (by `METHOD /path` or, where a provider's tests ask by path alone, by `/path`);
the last `Authorization` header seen. `new_id` makes ids and keys in each provider's style, and
`known` finds an instance, rental or catalog entry by id or answers the provider's 404.

Refusals are a table: each provider's book names, for every kind of business refusal a test can
order through the knobs (no capacity, no credit, a conflicting request, an offer gone), the
status, message and error code that provider answers with; `refuse_if_told` raises the next
ordered one as a `SimError`; the function of the same name does it for a ledger of rentals
kept inside a larger state. Capacity stays with each provider's own seed types, since every
catalog counts it under its own documented field.

`simulator_app` opens every simulator's app the same way around its book: the knobs and their
faults, its errors in the provider's format, the `/_sim` routes, `app.state.sim` (and
`app.state.workload` where instances serve one) for tests to reach.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, ClassVar, Protocol, TypeVar

from fastapi import FastAPI, Request

from providers.simulators.kit import (
    Refusal,
    SimError,
    SimulatorKnobs,
    install_errors,
    install_knobs,
    install_sim_routes,
)
from providers.simulators.workload import WorkloadState

# A refusal as a provider words it: status, message, error code ("" where it has none).
Answer = tuple[int, str, str]
Item = TypeVar("Item")


class Provisioning(Protocol):
    """An instance or rental that waits `knobs.provision_seconds` in a pending status."""

    status: str
    pending_since: float


Booted = TypeVar("Booted", bound=Provisioning)


class AccountBook:
    """One simulated account's knobs, lock, request log and refusal table."""

    REFUSALS: ClassVar[Mapping[Refusal, Answer]] = {}
    COUNT_BY_METHOD: ClassVar[bool] = True

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        self.requests: Counter[str] = Counter()
        self.last_authorization: str | None = None
        self.lock = threading.Lock()

    def record(self, request: Request) -> None:
        """Count the request and keep its credentials for tests to read."""
        path = request.url.path
        with self.lock:
            self.requests[f"{request.method} {path}" if self.COUNT_BY_METHOD else path] += 1
            self.last_authorization = request.headers.get("authorization")

    def settle(self) -> None:
        """Bring the instances up to date with the clock (a provider's book says how)."""

    @contextmanager
    def settled(self) -> Iterator[None]:
        """Hold the lock, with every instance settled first."""
        with self.lock:
            self.settle()
            yield

    def provisioned(self, items: Iterable[Booted], pending: str) -> Iterator[Booted]:
        """The `items` still in status `pending` whose provisioning time has passed."""
        now = time.monotonic()
        for item in items:
            if item.status == pending and now - item.pending_since >= self.knobs.provision_seconds:
                yield item

    def refuse_if_told(self) -> None:
        """Raise the refusal the knobs ordered next, if any, as this provider words it."""
        refuse_if_told(self.knobs, self.REFUSALS)


def refuse_if_told(knobs: SimulatorKnobs, table: Mapping[Refusal, Answer]) -> None:
    """Raise the refusal `knobs` ordered next, if any, worded from `table`."""
    refusal = knobs.next_refusal()
    if refusal is not None:
        raise SimError(*table[refusal])


def new_id(prefix: str, random_bytes: int) -> str:
    """A fresh id or key: `prefix`, then `random_bytes` random bytes in hex."""
    return f"{prefix}{secrets.token_hex(random_bytes)}"


def known(items: Mapping[str, Item], key: str, message: str, code: str = "") -> Item:
    """`items[key]`; a 404 `SimError` with `message` and `code` when there is none."""
    item = items.get(key)
    if item is None:
        raise SimError(404, message, code)
    return item


class Inspectable(Protocol):
    """What a simulator's state shows on its `/_sim` routes. Both receive the simulator's own
    base URL, for instances whose JSON names an address under it."""

    knobs: SimulatorKnobs

    def instances_json(self, base_url: str) -> list[dict[str, Any]]:
        """Every instance the simulator has had, as its API shows them."""
        ...

    def interrupt_json(self, instance_id: str, base_url: str) -> dict[str, Any]:
        """Interrupt a spot instance and show it as the API does."""
        ...


def simulator_app(
    title: str,
    state: Inspectable,
    render: Callable[[SimError], object],
    *,
    invalid: tuple[str, str] | None = None,
    workload: WorkloadState | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """A simulator's app around `state`, before its provider's own routes are added."""
    app = FastAPI(title=title, lifespan=lifespan)
    app.state.sim = state
    if workload is not None:
        app.state.workload = workload
    install_knobs(app, state.knobs)
    install_errors(app, render, invalid)
    install_sim_routes(app, state.instances_json, state.interrupt_json)
    return app
