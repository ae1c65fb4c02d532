"""Every endpoint as a method of both clients, from its one description in `calls`.

`Endpoint(build)` is a method that builds a call and sends it: on a `Client` it returns the
answer, on an `AsyncClient` an awaitable of it. `Pages(build)` is its `iter_*` twin, which
yields the items of every page, following `next_cursor` (an async iterator on `AsyncClient`).
`Waiting(build)` is `wait`, which polls a rental until it reaches a status. The clients
themselves only say how a call is sent (`send`), how pages are walked (`walk`) and how a rental
is polled (`poll`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import update_wrapper
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from pydantic import BaseModel

from broker.client import calls, waiting
from broker.client.calls import Call
from broker.client.waiting import Watch
from broker.schemas import Page
from broker.schemas.rentals import Rental

if TYPE_CHECKING:
    from broker.client.aio import AsyncClient
    from broker.client.sync import Client

P = ParamSpec("P")
T = TypeVar("T", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)
Built = TypeVar("Built")


def method(build: Callable[P, Built], run: Callable[[Built], Any]) -> Callable[P, Any]:
    """`run(build(...))` as a method, named and documented as `build` is."""

    def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
        return run(build(*args, **kwargs))

    return update_wrapper(bound, build)


class Endpoint(Generic[P, T]):
    """A method that sends `build(...)`: blocking on `Client`, awaitable on `AsyncClient`."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Endpoint[P, T]: ...
    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: Client | AsyncClient | None, owner: type[Any]) -> Any:
        return self if client is None else method(self.build, client.send)


class Pages(Generic[P, Item]):
    """The items of every page of `build(...)`, following `next_cursor`."""

    def __init__(self, build: Callable[P, Call[Page[Item]]]) -> None:
        self.build = build

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Pages[P, Item]: ...
    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, Iterator[Item]]: ...
    @overload
    def __get__(
        self, client: AsyncClient, owner: type[Any]
    ) -> Callable[P, AsyncIterator[Item]]: ...
    def __get__(self, client: Client | AsyncClient | None, owner: type[Any]) -> Any:
        return self if client is None else method(self.build, client.walk)


class Waiting(Generic[P]):
    """`wait`: polls until `build(...)`'s watch is done; blocking on `Client`, awaitable on
    `AsyncClient`."""

    def __init__(self, build: Callable[P, Watch]) -> None:
        self.build = build

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Waiting[P]: ...
    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, Rental]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: type[Any]) -> Callable[P, Awaitable[Rental]]: ...
    def __get__(self, client: Client | AsyncClient | None, owner: type[Any]) -> Any:
        return self if client is None else method(self.build, client.poll)


class Endpoints:
    """Every endpoint of the API; see `broker.client.calls` for each one's parameters."""

    # The catalog (no key needed).
    offers = Endpoint(calls.offers)
    iter_offers = Pages(calls.offers)
    offer = Endpoint(calls.offer)
    gpus = Endpoint(calls.gpus)
    spot_prices = Endpoint(calls.spot_prices)
    price_history = Endpoint(calls.price_history)
    iter_price_history = Pages(calls.price_history)
    # Rentals.
    rent = Endpoint(calls.rent)
    rentals = Endpoint(calls.rentals)
    iter_rentals = Pages(calls.rentals)
    rental = Endpoint(calls.rental)
    stop = Endpoint(calls.stop)
    start = Endpoint(calls.start)
    terminate = Endpoint(calls.terminate)
    wait = Waiting(waiting.watch)
    # Credit and budget.
    wallet = Endpoint(calls.wallet)
    ledger = Endpoint(calls.ledger)
    iter_ledger = Pages(calls.ledger)
    topup = Endpoint(calls.topup)
    budget = Endpoint(calls.budget)
    set_budget = Endpoint(calls.set_budget)
    # Webhooks.
    webhooks = Endpoint(calls.webhooks)
    add_webhook = Endpoint(calls.add_webhook)
    remove_webhook = Endpoint(calls.remove_webhook)
    test_webhook = Endpoint(calls.test_webhook)
    deliveries = Endpoint(calls.deliveries)
    iter_deliveries = Pages(calls.deliveries)
    # The account's own keys.
    keys = Endpoint(calls.keys)
    new_key = Endpoint(calls.new_key)
    revoke_key = Endpoint(calls.revoke_key)
    # The operator (the client's key must be GPUBROKER_ADMIN_KEY).
    create_account = Endpoint(calls.create_account)
    grant_credit = Endpoint(calls.grant_credit)
    health = Endpoint(calls.health)
