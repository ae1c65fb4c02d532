"""`Client`: the broker's API from blocking Python code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from broker.client import base
from broker.client.calls import Call
from broker.client.waiting import Watch
from broker.schemas import Page
from broker.schemas.rentals import Rental

T = TypeVar("T", bound=BaseModel)
Item = TypeVar("Item", bound=BaseModel)


class Client(base.Connection[httpx.Client]):
    """One broker. `url` and `api_key` default to GPUBROKER_URL / GPUBROKER_API_KEY, then the
    profile `gpubroker login` saved. Use it as a context manager, or call `close()`.

    Every endpoint is a method (`offers`, `rent`, `stop`, `ledger`, `budget`, ...) answering
    the model the broker answers with; each list has an `iter_*` twin that follows the pages."""

    def open(self, options: dict[str, Any]) -> httpx.Client:
        return httpx.Client(**options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Send one call; a broken connection is retried only where that is safe."""
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **base.request_options(call))
            except httpx.TransportError as exc:
                attempt += 1
                time.sleep(base.backoff(call, attempt, exc, self.url))
                continue
            return base.parse(call, response)

    def walk(self, first: Call[Page[Item]]) -> Iterator[Item]:
        """The items of `first`'s page and of every page after it."""
        call: Call[Page[Item]] | None = first
        while call is not None:
            page = self.send(call)
            yield from page.data
            call = call.following(page.next_cursor)

    def poll(self, watch: Watch) -> Rental:
        """Ask for the rental until `watch` is done, `watch.interval` seconds apart."""
        while not watch.done(rental := self.rental(watch.rental_id)):
            time.sleep(watch.interval)
        return rental
