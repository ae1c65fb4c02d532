"""The shared client's transport: keep-alive connections per upstream, handed out in O(1).

httpx's default transport pools connections in httpcore's `AsyncConnectionPool`, which rescans
every connection it holds (and polls each idle socket) for every request it places: quadratic in
the pool size. A proxy is exactly the client that hurts: dozens of requests in flight to one
workload, a thousand open streams. Measured on the connect benchmark, that scan was half the
proxy's CPU per small request.

`LeanTransport` keeps, per origin, a stack of idle httpcore connections: a request takes the
most recently used one that is still alive (one `has_expired` check: keep-alive expiry, or the
server having closed it) or opens a new one, and the connection goes back on the stack when its
response is closed cleanly. Busy connections are not tracked at all, so their number costs
nothing; idle ones beyond `max_idle_per_origin` are closed. Requests and errors cross into
httpx exactly as its own transport does it, so callers see ordinary `httpx` exceptions.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

# httpcore's errors and the httpx errors callers catch; subclasses before their bases.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)
_HTTPCORE_ERRORS = tuple(source for source, _ in _ERRORS)

Origin = tuple[bytes, bytes, int]


def as_httpx(exc: Exception) -> httpx.TransportError:
    """The httpx error a caller expects for an httpcore one."""
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return target(str(exc))
    return httpx.TransportError(str(exc))


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 to any number of origins, reusing idle connections newest first."""

    def __init__(
        self,
        *,
        max_idle_per_origin: int,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._max_idle = max_idle_per_origin
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._idle: dict[Origin, list[httpcore.AsyncHTTPConnection]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin: Origin = (url.raw_scheme, url.raw_host, url.port or _default_port(url))
        connection = await self._checkout(origin)
        outgoing = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=origin[2], target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await connection.handle_async_request(outgoing)
        except _HTTPCORE_ERRORS as exc:  # httpcore has closed the connection: never reused
            raise as_httpx(exc) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, connection, self, origin),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()

    async def _checkout(self, origin: Origin) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(origin)
        while stack:
            connection = stack.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()
        scheme, host, port = origin
        return httpcore.AsyncHTTPConnection(
            origin=httpcore.Origin(scheme, host, port),
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
        )

    async def checkin(self, origin: Origin, connection: httpcore.AsyncHTTPConnection) -> None:
        """Keep a connection whose response ended cleanly; close anything else."""
        stack = self._idle.setdefault(origin, [])
        if connection.is_idle() and len(stack) < self._max_idle:
            stack.append(connection)
        else:
            await connection.aclose()


class _Body(httpx.AsyncByteStream):
    """A response body that returns its connection to the transport when closed."""

    def __init__(
        self,
        response: httpcore.Response,
        connection: httpcore.AsyncHTTPConnection,
        transport: LeanTransport,
        origin: Origin,
    ) -> None:
        self._response = response
        self._connection = connection
        self._transport = transport
        self._origin = origin
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream: Any = self._response.stream
        try:
            async for chunk in stream:
                yield chunk
        except _HTTPCORE_ERRORS as exc:
            raise as_httpx(exc) from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._response.aclose()
        await self._transport.checkin(self._origin, self._connection)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.raw_scheme == b"https" else 80
