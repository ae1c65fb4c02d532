"""A short-lived memo for the proxy's lookups, shared by concurrent requests.

A proxied request must not cost a database query and a provider API call each time: that
would make the proxy as slow as the database and hammer the provider. So each lookup (a key's
account, a rental's state, a placement's upstream) is remembered for `ttl` seconds, and
concurrent misses for one key share one load instead of stampeding (1,000 streams opened at
once cause one lookup, not 1,000). Failures are not remembered: the next request tries again.

Forgetting a key also disowns a load of it that is still running: that load may have read the
state from before the change that caused the forgetting, so its result is handed to the requests
already waiting for it but never stored.

Used from one event loop only, so it needs no lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_ENTRIES = 100_000


class _Abandoned(Exception):
    """The load a waiter shared was cancelled with the request that started it."""


class Memo(Generic[K, V]):
    """Values by key for `ttl` seconds (0: never kept), with in-flight loads shared."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        held = self._values.get(key)
        if held is not None and held[0] > self._clock():
            return held[1]
        pending = self._loading.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except _Abandoned:
                pass  # the request that was loading went away: load for this one
        return await self._load(key, load)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.set_exception(_Abandoned())
            future.exception()  # marked retrieved: nobody may be waiting
            raise
        except Exception as exc:  # shared with the waiters, then raised here too
            future.set_exception(exc)
            future.exception()
            raise
        else:
            future.set_result(value)
            if self._loading.get(key) is future:  # not forgotten while it loaded
                self.put(key, value)
            return value
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]

    def until(self, key: K) -> float:
        """When the value kept for `key` expires, on the memo's clock (0: none is kept)."""
        held = self._values.get(key)
        return 0.0 if held is None else held[0]

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._values) >= MAX_ENTRIES:
            self._evict()
        self._values[key] = (self._clock() + self.ttl, value)

    def forget(self, key: K) -> None:
        self._values.pop(key, None)
        self._loading.pop(key, None)

    def forget_where(self, stale: Callable[[K, V | None], bool]) -> None:
        """Forget every key for which `stale(key, value)` holds (value None while loading)."""
        for key in [key for key, (_, value) in self._values.items() if stale(key, value)]:
            del self._values[key]
        for key in [key for key in self._loading if stale(key, None)]:
            del self._loading[key]

    def clear(self) -> None:
        self._values.clear()
        self._loading.clear()

    def _evict(self) -> None:
        now = self._clock()
        for key in [key for key, (until, _) in self._values.items() if until <= now]:
            del self._values[key]
        if len(self._values) >= MAX_ENTRIES:
            self._values.clear()
