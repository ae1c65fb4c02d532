"""Who may reach a rental's workload, and where it is: the proxy's checks before any byte moves.

A caller presents either its account key or the rental's own `rental_key` (stored as a SHA-256,
compared in constant time). The account key opens every rental of its account; the rental key
opens that one rental only, so a workload can be shared without sharing the account. Keys come
as `Authorization: Bearer`, or, for browsers that cannot set headers, as the `gpubroker_key`
query parameter or cookie; those two accept the rental key only, because an account key in a
URL or a cookie would leak far more than one workload.

Answers, in order (a missing key is the route's 401): a key that opens nothing 401; another
account's (or no such) rental 404; a rental that is not running 409 with its `status`; one
reached over SSH only 409 with its `ssh` details; a provider that cannot say where the workload
is 409 or 502.

Lookups go through the host's `lookup.ConnectLookup` and are memoised for `cache_seconds` (see
`cache.Memo`): a key's account, a running rental's state (rentals in any other state are read
again each time, so one that has just started is reachable at once), and the upstream of each
placement, keyed by provider and handle, so a rental moved by a spot recovery resolves afresh.
The host calls `invalidate` (from any thread) when a key is revoked or a rental changes status
or placement; the next request, on the event loop, drops what it names before it looks anything
up, so a revoked key or an ended rental is refused at once rather than when its entry expires.
`cache_seconds` is then only a bound for a host that cannot tell. A connection refused by the
upstream forgets the target at once.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from urllib.parse import unquote_plus

import anyio.to_thread

from providers.base import ProviderError, ProviderRefused
from providers.rental import Upstream
from proxy.cache import MAX_ENTRIES, Memo
from proxy.errors import ProxyError, conflict, not_found, provider_error, unauthorized
from proxy.headers import KEY_COOKIE, Credentials, parse_cookies
from proxy.lookup import ConnectLookup, RentalView
from proxy.paths import connect_prefix

KEY_PARAM = KEY_COOKIE


class KeySource(StrEnum):
    HEADER = "header"
    QUERY = "query"
    COOKIE = "cookie"


@dataclass(frozen=True)
class CallerKey:
    secret: str
    source: KeySource

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"CallerKey(source={self.source.value})"


@dataclass(frozen=True)
class Stale:
    """What the host says has changed: rentals by id, keys by digest, accounts by id."""

    rentals: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    everything: bool = False


@dataclass(frozen=True)
class Target:
    """An admitted request's destination: the rental's upstream and its public prefix."""

    rental_id: str
    placement: tuple[str, str]  # provider, handle
    upstream: Upstream

    @cached_property
    def prefix(self) -> str:
        return connect_prefix(self.rental_id)

    @cached_property
    def credentials(self) -> Credentials:
        """The upstream's credential headers, encoded once per target."""
        return Credentials.of(self.upstream.headers)


def caller_key(headers: list[tuple[bytes, bytes]], query: bytes) -> tuple[CallerKey | None, bytes]:
    """The caller's key and where it came from, and the query string to forward without it."""
    bearer: str | None = None
    cookies: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and secret.strip():
                bearer = secret.strip()
        elif lowered == b"cookie":
            cookies.append(value)
    from_query, forwarded = _take_query_key(query)
    if bearer is not None:
        return CallerKey(bearer, KeySource.HEADER), forwarded
    if from_query:
        return CallerKey(from_query, KeySource.QUERY), forwarded
    from_cookie = next((v for n, v in parse_cookies(cookies) if n == KEY_COOKIE and v), None)
    if from_cookie:
        return CallerKey(from_cookie, KeySource.COOKIE), forwarded
    return None, forwarded


def _take_query_key(query: bytes) -> tuple[str | None, bytes]:
    if KEY_PARAM.encode() not in query:
        return None, query
    found: str | None = None
    kept: list[bytes] = []
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if unquote_plus(name.decode("latin-1")) == KEY_PARAM:
            found = found or unquote_plus(value.decode("latin-1")) or None
        else:
            kept.append(part)
    return found, b"&".join(kept)


class Gatekeeper:
    """Admits a caller to a rental's upstream, or raises the `ProxyError` that says why not."""

    def __init__(self, lookup: ConnectLookup, cache_seconds: float) -> None:
        self._lookup = lookup
        self._rentals: Memo[str, RentalView | None] = Memo(cache_seconds)
        self._accounts: Memo[str, str | None] = Memo(cache_seconds)
        self._upstreams: Memo[tuple[str, str, str], Upstream | None] = Memo(cache_seconds)
        # Admissions already granted, by (rental, key digest, whether the key came as a header):
        # a repeat caller costs one dict lookup, until something is invalidated or expires.
        self._admitted: dict[tuple[str, str, bool], tuple[float, Target]] = {}
        self._generation = 0  # bumped whenever anything is forgotten
        self._stale: deque[Stale] = deque()  # appended from any thread, drained on the loop

    def invalidate(self, stale: Stale) -> None:
        """Forget what `stale` names before the next admission; safe from any thread."""
        self._stale.append(stale)

    async def admit(self, rental_id: str, key: CallerKey) -> Target:
        if self._stale:
            self._drain()
        digest = self._lookup.key_digest(key.secret)
        entry = (rental_id, digest, key.source is KeySource.HEADER)
        held = self._admitted.get(entry)
        if held is not None and held[0] > time.monotonic():
            return held[1]
        generation = self._generation
        target, until = await self._admit(rental_id, digest, key)
        if generation == self._generation and not self._stale and until > time.monotonic():
            if len(self._admitted) >= MAX_ENTRIES:
                self._admitted.clear()
            self._admitted[entry] = (until, target)
        return target

    async def _admit(self, rental_id: str, digest: str, key: CallerKey) -> tuple[Target, float]:
        """The target, and until when what admitted it is remembered (the earliest expiry)."""
        view = await self._rental(rental_id)
        until = self._rentals.until(rental_id)
        if view is None or not hmac.compare_digest(digest, view.key_hash):
            if key.source is not KeySource.HEADER:
                raise unauthorized(
                    f"the {KEY_PARAM} {key.source.value} must be this rental's rental_key"
                )
            account_id = await self._account(digest)
            if account_id is None:
                raise unauthorized("the key is unknown or revoked")
            if view is None or view.account_id != account_id:
                raise not_found(f"no rental {rental_id}")
            until = min(until, self._accounts.until(digest))
        if view.status != "running":
            raise conflict(
                f"rental {rental_id} is {view.status}; its workload is reachable only while "
                "it is running",
                status=view.status,
            )
        target = await self._target(view)
        return target, min(until, self._upstreams.until((view.id, *target.placement)))

    def forget(self, target: Target) -> None:
        """Drop what is remembered about a target that just failed, so the next try re-reads."""
        self._generation += 1
        self._rentals.forget(target.rental_id)
        self._upstreams.forget((target.rental_id, *target.placement))
        self._admitted = {k: v for k, v in self._admitted.items() if k[0] != target.rental_id}

    def _drain(self) -> None:
        self._generation += 1
        self._admitted.clear()  # invalidations are rare: start over rather than pick
        while self._stale:
            stale = self._stale.popleft()
            if stale.everything:
                for memo in (self._rentals, self._accounts, self._upstreams):
                    memo.clear()
                continue
            self._forget_rentals(stale.rentals)
            for digest in stale.keys:
                self._accounts.forget(digest)
            self._forget_accounts(stale.accounts)

    def _forget_accounts(self, ids: frozenset[str]) -> None:
        if ids:  # loads in flight are disowned too: they may have read a key now revoked
            self._accounts.forget_where(lambda _, account: account is None or account in ids)

    def _forget_rentals(self, ids: Iterable[str]) -> None:
        ids = frozenset(ids)
        if not ids:
            return
        for rental_id in ids:
            self._rentals.forget(rental_id)
        self._upstreams.forget_where(lambda key, _: key[0] in ids)

    async def _rental(self, rental_id: str) -> RentalView | None:
        view = await self._rentals.get(
            rental_id, lambda: anyio.to_thread.run_sync(self._lookup.rental, rental_id)
        )
        if view is None or view.status != "running":
            self._rentals.forget(rental_id)
        return view

    async def _account(self, digest: str) -> str | None:
        account_id = await self._accounts.get(
            digest, lambda: anyio.to_thread.run_sync(self._lookup.account_for_key, digest)
        )
        if account_id is None:
            self._accounts.forget(digest)
        return account_id

    async def _target(self, view: RentalView) -> Target:
        if view.provider is None or view.handle is None:
            raise provider_error(f"rental {view.id} has no placement to reach")
        key = (view.id, view.provider, view.handle)
        try:
            upstream = await self._upstreams.get(
                key, lambda: anyio.to_thread.run_sync(self._lookup.upstream, view)
            )
        except ProviderRefused as exc:
            if exc.reason == "conflict":
                raise conflict(
                    f"{view.provider} says the workload is not reachable: {exc.message}",
                    status=view.status,
                ) from None
            raise _provider_error(view.provider, exc) from None
        except ProviderError as exc:
            raise _provider_error(view.provider, exc) from None
        if upstream is None:
            raise _ssh_only(view)
        return Target(view.id, (view.provider, view.handle), upstream)


def _provider_error(provider: str, exc: ProviderError) -> ProxyError:
    return provider_error(f"{provider} could not say where the workload is: {exc.message}")


def _ssh_only(view: RentalView) -> ProxyError:
    if view.ssh is None:
        return conflict(f"rental {view.id} has no HTTP workload to connect to")
    command = view.ssh.get("command") or "ssh"
    return conflict(
        f"rental {view.id} is reached over SSH, not through the proxy: {command}", ssh=view.ssh
    )
