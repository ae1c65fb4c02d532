"""HTTP through the proxy: stream the request up, stream the response down, hold nothing whole.

One `httpx.AsyncClient` (made by `upstream_client`, opened and closed by the app's lifespan)
carries every proxied request, so upstream connections are pooled across callers (by
`pool.LeanTransport`). The request body is handed to it as the ASGI stream it arrives as; the
response is relayed with `aiter_raw` (bytes as the workload sent them, compressed or not) by
`Exchange` as they are read, so a token the workload emits reaches the caller at once and a
10 GB download costs a few buffers. `Exchange` also watches for the caller leaving and then
closes the upstream request, which is how an abandoned generation stops instead of running to
its end.

Timeouts suit long generations: connecting is short (a workload that is down answers 502 at
once), reading is per chunk with no total (a stream may last hours; a silence past the read
timeout is a 504 before the response starts, a cut connection after). The client keeps no
cookies and ignores proxy settings in the environment: it must never carry one caller's state
to another, nor send a workload's traffic anywhere but the workload.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from http.cookiejar import Cookie, CookieJar
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from proxy import metrics
from proxy.access import Target
from proxy.errors import ProxyError
from proxy.headers import RawHeaders, downstream_headers, upstream_request_headers
from proxy.paths import upstream_url
from proxy.pool import LeanTransport
from proxy.settings import ProxySettings

log = logging.getLogger("gpubroker.proxy")

QUEUE_CHUNKS = 64  # chunks read ahead of a slow caller, at most
BATCH_BYTES = 256 * 1024  # the most one relayed message gathers


class _NoCookies(CookieJar):
    """A jar that keeps nothing: the shared client is shared by every caller."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def upstream_client(settings: ProxySettings) -> httpx.AsyncClient:
    """The one client for every proxied request; use it as an async context manager."""
    return httpx.AsyncClient(
        transport=LeanTransport(max_idle_per_origin=settings.max_idle_connections),
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.read_timeout_seconds,
            write=settings.write_timeout_seconds,
            pool=None,
        ),
        cookies=_NoCookies(),  # a jar instance is used as is; anything else is copied into one
        follow_redirects=False,
        trust_env=False,
    )


def forward(
    request: Request,
    target: Target,
    path: str,
    query: bytes,
    client: httpx.AsyncClient,
    on_unreachable: Callable[[Target], None],
) -> Exchange:
    """The exchange with the target's upstream, as an ASGI response that runs it when sent."""
    scope = request.scope
    caller_headers: RawHeaders = scope["headers"]
    headers = upstream_request_headers(
        caller_headers,
        target.upstream.headers,
        client_host=scope["client"][0] if scope.get("client") else None,
        scheme=scope.get("scheme", "http"),
        prefix=target.prefix,
    )
    body_sent = anyio.Event()
    if not _has_body(caller_headers):
        body_sent.set()
    # A plain Request, not `client.build_request`: nothing of the client's (base URL, default
    # headers such as its Accept-Encoding, cookies) belongs on a proxied request, and merging
    # them would cost time on every one.
    outgoing = httpx.Request(
        request.method,
        upstream_url(target.upstream.base_url, path, query),
        headers=headers,
        content=None if body_sent.is_set() else _body(request, body_sent),
    )
    return Exchange(outgoing, target, client, body_sent, on_unreachable)


def _has_body(headers: RawHeaders) -> bool:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value != b"0"):
            return True
    return False


async def _body(request: Request, sent: anyio.Event) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            metrics.HTTP_UP.inc(len(chunk))
            yield chunk
    sent.set()


class Exchange:
    """One proxied request: sent up, answered down, and dropped as soon as the caller leaves.

    From the moment the request body is sent, a watcher waits for the caller to disconnect and
    then cancels everything: a caller that gives up on a long generation, before its first
    byte or in the middle of its stream, closes the upstream request, so the workload stops
    instead of generating for nobody.

    A chunked response (a token stream) arrives as one HTTP chunk per token, and relaying each
    as its own write would cost a write per token. So a reader task takes chunks from the
    upstream as fast as they come and the writer sends whatever has gathered meanwhile in one
    message: a token alone when tokens are slow, many together when they are fast, never a
    delay. At most `QUEUE_CHUNKS` wait, so a slow caller slows the upstream rather than filling
    memory. A body of known length comes in large reads already and is passed straight on.
    """

    def __init__(
        self,
        outgoing: httpx.Request,
        target: Target,
        client: httpx.AsyncClient,
        body_sent: anyio.Event,
        on_unreachable: Callable[[Target], None],
    ) -> None:
        self.outgoing = outgoing
        self.target = target
        self.client = client
        self.body_sent = body_sent
        self.on_unreachable = on_unreachable
        self.broken: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        error: ProxyError | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_cancel_on_disconnect, receive, self.body_sent, tasks.cancel_scope)
            try:
                with metrics.upstream_timer("http"):
                    upstream = await self.client.send(self.outgoing, stream=True)
            except ClientDisconnect:
                pass  # the caller left mid-upload: nobody to answer
            except httpx.TimeoutException as exc:
                error = self._timeout(exc)
            except httpx.TransportError as exc:
                error = self._unreachable(exc)
            else:
                self.body_sent.set()  # any body the upstream did not read is drained, not sent
                try:
                    await self._relay(upstream, tasks, send)
                finally:
                    with anyio.CancelScope(shield=True):
                        await upstream.aclose()
            tasks.cancel_scope.cancel()
        if error is not None:
            metrics.count("http", "timeout" if error.status == 504 else "unreachable")
            raise error  # nothing was sent yet: the app's handler answers in the error shape

    async def _relay(self, upstream: httpx.Response, tasks: TaskGroup, send: Send) -> None:
        relayed = downstream_headers(
            upstream.headers.raw, base_url=self.target.upstream.base_url, prefix=self.target.prefix
        )
        await send(
            {"type": "http.response.start", "status": upstream.status_code, "headers": relayed}
        )
        metrics.count("http", metrics.status_class(upstream.status_code))
        if "chunked" in upstream.headers.get("transfer-encoding", ""):
            await self._gather(upstream, tasks, send)
        else:
            await self._pass(upstream, send)
        if self.broken is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # Too late for an error status: end without completing the response, so the server
        # drops the connection and the caller sees a cut body, not a short one.
        log.warning("workload of %s broke off its response: %s", self.target.rental_id, self.broken)

    async def _pass(self, upstream: httpx.Response, send: Send) -> None:
        try:
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                metrics.HTTP_DOWN.inc(len(chunk))
        except httpx.TransportError as exc:
            self.broken = type(exc).__name__

    async def _gather(self, upstream: httpx.Response, tasks: TaskGroup, send: Send) -> None:
        writer, reader = anyio.create_memory_object_stream[bytes](QUEUE_CHUNKS)
        tasks.start_soon(self._read, upstream, writer)
        with reader:
            async for first in reader:
                batch, size = [first], len(first)
                while size < BATCH_BYTES:
                    try:
                        chunk = reader.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    batch.append(chunk)
                    size += len(chunk)
                body = first if len(batch) == 1 else b"".join(batch)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                metrics.HTTP_DOWN.inc(size)

    async def _read(self, upstream: httpx.Response, writer: MemoryObjectSendStream[bytes]) -> None:
        with writer:
            try:
                async for chunk in upstream.aiter_raw():
                    try:
                        writer.send_nowait(chunk)  # no checkpoint: keep reading what is buffered
                    except anyio.WouldBlock:
                        await writer.send(chunk)
            except httpx.TransportError as exc:
                self.broken = type(exc).__name__

    def _timeout(self, exc: httpx.TimeoutException) -> ProxyError:
        if isinstance(exc, httpx.ConnectTimeout):
            return self._unreachable(exc)
        return ProxyError(
            504,
            "provider_error",
            f"the workload of rental {self.target.rental_id} did not answer in time "
            "(GPUBROKER_PROXY_READ_TIMEOUT_SECONDS); retry, or check that it is not stuck",
        )

    def _unreachable(self, exc: httpx.TransportError) -> ProxyError:
        """502; what is remembered about the target is dropped, so a retry looks again."""
        log.info("workload of %s unreachable: %s", self.target.rental_id, type(exc).__name__)
        self.on_unreachable(self.target)
        return ProxyError(
            502,
            "provider_error",
            f"the workload of rental {self.target.rental_id} could not be reached "
            f"({type(exc).__name__}); it may still be starting or may have stopped: retry in "
            "a moment",
        )


async def _cancel_on_disconnect(
    receive: Receive, body_sent: anyio.Event, scope: anyio.CancelScope
) -> None:
    await body_sent.wait()  # until then the request body is read from `receive` upstream-bound
    while (await receive())["type"] != "http.disconnect":
        pass  # the rest of a request body the upstream did not read
    scope.cancel()
