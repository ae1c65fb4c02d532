"""The shared upstream client: HTTP/1.1 to workloads over pooled keep-alive connections.

A general client (httpx over httpcore) parses each response with h11, in pure Python, and wraps
every request in layers of objects a proxy does not need (URL models, header models, auth,
redirects, cookies); measured on the connect benchmark, that was most of the proxy's CPU per small
request. This client speaks only what the proxy needs: it writes the request head as bytes, parses
the answer with `httptools` (llhttp, in C, the parser uvicorn itself uses) straight from the
socket's `data_received`, and hands the body on as it arrives.

`Pool` keeps, per origin, a stack of idle connections: a request takes the most recently used one
that is still open and not older than the keep-alive expiry, or opens a new one, and a connection
goes back on the stack when its response ended cleanly and the workload allows reuse. A request
without a body that fails on a reused connection before any byte of an answer (the workload
closed it while idle) is sent once more on a fresh one, as nginx does.

Reading is bounded: past `HIGH_WATER` buffered bytes the socket stops being read until the caller
takes them, so a slow caller slows the workload instead of filling memory. Waits are bounded by
the settings' timeouts: connecting (`Unreachable`), each write and each read (`UpstreamTimeout`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

from proxy.settings import ProxySettings

HIGH_WATER = 256 * 1024  # bytes read ahead of the caller, at most (about)

Origin = tuple[str, str, int]  # scheme, host, port


class UpstreamError(Exception):
    """The workload could not be reached, or broke off, or was too slow."""


class Unreachable(UpstreamError):
    """No connection, or one that failed before any answer."""


class UpstreamTimeout(UpstreamError):
    """A read or write waited longer than its timeout."""


class Base:
    """A parsed upstream base URL: where to connect and what goes before every path."""

    __slots__ = ("host", "origin", "path")

    def __init__(self, base_url: str) -> None:
        split = urlsplit(base_url)
        scheme = split.scheme.lower()
        if scheme not in ("http", "https") or not split.hostname:
            raise Unreachable(f"unsupported upstream base URL {base_url!r}")
        port = split.port or (443 if scheme == "https" else 80)
        self.origin: Origin = (scheme, split.hostname, port)
        self.path = split.path.rstrip("/").encode("latin-1") + b"/"
        self.host = split.netloc.rpartition("@")[2].encode("latin-1")


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection to a workload, one exchange at a time."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        # One parser for every answer on the connection (llhttp starts over after each), but
        # for the answer to a HEAD, whose announced body never comes: a new one follows it.
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = False
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        if self._head_only:
            self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.error: str | None = None
        self.received_any = False
        self._keep_alive = False
        self._informational = False
        self._length_known = False
        self._chunks: list[bytes] = []
        self._buffered = 0

    # -- the exchange, as the proxy drives it ---------------------------------------------

    def begin(self, head: bytes, *, head_only: bool) -> None:
        """Send a request's head (its body, if any, follows with `write`)."""
        self._reset(head_only=head_only)
        self.write(head)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket's send buffer is full (the workload reads slower than we write)."""
        while self._writing_paused and not self.closed:
            await self._wait(self.pool.write_timeout)

    async def response(self) -> None:
        """Wait for the response's status and headers; raises `UpstreamError`."""
        while not self.headers_done:
            if self.error is not None:
                raise Unreachable(self.error)
            await self._wait(self.pool.read_timeout)

    def take(self) -> bytes:
        """The body bytes read so far (b"" if none), handed over whole."""
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def pending(self) -> bool:
        return bool(self._chunks)

    async def more(self) -> None:
        """Wait until more body bytes, the end, or an error arrive (`UpstreamTimeout` past the
        read timeout)."""
        if not self._chunks and not self.complete and self.error is None:
            await self._wait(self.pool.read_timeout)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and not self.closed
            and not self._chunks
            and self._keep_alive
        )

    async def _wait(self, timeout: float) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, only alike
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = f"invalid HTTP response: {exc}"
            self.abort()
        if self._buffered > HIGH_WATER and not self._reading_paused and not self.closed:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close: a half-closed connection is of no further use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and not self._length_known:
                self.complete = True  # a body delimited by the end of the connection
            else:
                self.error = f"the workload closed the connection ({exc or 'end of stream'})"
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # 103 Early Hints and the like: not relayed
            self._informational = True
            self.headers = []
            return
        self.status = status
        self.headers_done = True
        # Asked now: llhttp forgets it once the message is complete.
        self._keep_alive = bool(self._parser.should_keep_alive())
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (
                lowered == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                self._length_known = True
        if self._head_only or status in (204, 304):
            self._length_known = True
            self.complete = True

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self._chunks.append(body)
            self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.complete = True


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("the workload did not answer in time"))


class Pool:
    """Keep-alive connections to any number of workloads, with the timeouts and the idle limit
    of the proxy's settings; an async context manager."""

    def __init__(
        self,
        settings: ProxySettings,
        *,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = settings.connect_timeout_seconds
        self.read_timeout = settings.read_timeout_seconds
        self.write_timeout = settings.write_timeout_seconds
        self._max_idle = settings.max_idle_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[Connection]] = {}
        self._bases: dict[str, Base] = {}

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.abort()

    def base(self, base_url: str) -> Base:
        """The parsed form of a base URL, parsed once."""
        base = self._bases.get(base_url)
        if base is None:
            if len(self._bases) > 10_000:
                self._bases.clear()
            base = self._bases[base_url] = Base(base_url)
        return base

    async def send(
        self, origin: Origin, head: bytes, body: AsyncIterator[bytes] | None, *, head_only: bool
    ) -> Connection:
        """A connection on which `head` and the body were sent and whose response has begun."""
        connection, reused = await self._checkout(origin)
        try:
            return await _exchange(connection, head, body, head_only)
        except Unreachable:
            if not (reused and body is None and not connection.received_any):
                raise
        connection, _ = await self._checkout(origin, fresh=True)
        return await _exchange(connection, head, None, head_only)

    def release(self, connection: Connection) -> None:
        """Keep a connection whose exchange ended cleanly; close anything else."""
        stack = self._idle.setdefault(connection.origin, [])
        if connection.reusable() and len(stack) < self._max_idle:
            connection.idle_since = time.monotonic()
            stack.append(connection)
        else:
            connection.abort()

    async def _checkout(self, origin: Origin, *, fresh: bool = False) -> tuple[Connection, bool]:
        stack = None if fresh else self._idle.get(origin)
        if stack:
            now = time.monotonic()
            while stack:
                connection = stack.pop()
                if not connection.closed and now - connection.idle_since < self._keepalive_expiry:
                    return connection, True
                connection.abort()
        return await self._open(origin), False

    async def _open(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl_context = self._ssl_context or ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(self, origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError:
            raise Unreachable(
                f"ConnectTimeout: no connection within {self.connect_timeout} s"
            ) from None
        except OSError as exc:
            raise Unreachable(f"ConnectError: {exc.strerror or exc}") from None
        return connection


async def _exchange(
    connection: Connection, head: bytes, body: AsyncIterator[bytes] | None, head_only: bool
) -> Connection:
    try:
        connection.begin(head, head_only=head_only)
        if body is not None:
            async for chunk in body:
                if connection.closed:
                    break  # it answered (or failed) before reading it all: `response` tells
                connection.write(chunk)
                await connection.drain()
        await connection.response()
    except BaseException:
        connection.abort()
        raise
    return connection
