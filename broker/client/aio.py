"""`AsyncClient`: the broker's API from asyncio code, call for call like `Client`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


class AsyncClient(base.Connection[httpx.AsyncClient]):
    """`Client` for asyncio: the same methods, awaited (`iter_*` are async iterators). Use it
    with `async with`, or `await close()`."""

    def open(self, options: dict[str, Any]) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send one call; a broken connection is retried only where that is safe."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, **base.request_options(call)
                )
            except httpx.TransportError as exc:
                attempt += 1
                await asyncio.sleep(base.backoff(call, attempt, exc, self.url))
                continue
            return base.parse(call, response)

    async def walk(self, first: Call[Page[Item]]) -> AsyncIterator[Item]:
        """The items of `first`'s page and of every page after it."""
        call: Call[Page[Item]] | None = first
        while call is not None:
            page = await self.send(call)
            for item in page.data:
                yield item
            call = call.following(page.next_cursor)

    async def poll(self, watch: Watch) -> Rental:
        """Ask for the rental until `watch` is done, `watch.interval` seconds apart."""
        while not watch.done(rental := await self.rental(watch.rental_id)):
            await asyncio.sleep(watch.interval)
        return rental
