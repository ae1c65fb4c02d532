"""HTTP through the proxy: stream the request up, stream the response down, hold nothing whole.

One `upstream.Pool` (made by `upstream_client`, opened and closed by the app's lifespan) carries
every proxied request, so upstream connections are kept alive across callers. The request body
is written up as the ASGI messages bring it (chunked when the caller's was); the response is
relayed by `Exchange` as it is read, bytes as the workload sent them, compressed or not. Whatever
has arrived by the time the caller's socket takes the last write goes down as one message: a token
alone when tokens are slow, many together when they are fast, never a delay, so the first chunk
of a stream is sent the moment it arrives. A 10 GB download costs a few buffers: reading stops
while the caller is behind (see `upstream.HIGH_WATER`).

`Exchange` also watches for the caller leaving and then closes the upstream request, which is
how an abandoned generation stops instead of running to its end. The watch starts once an
exchange has lasted `WATCH_AFTER_SECONDS`: most requests are answered well before, and a watcher
of their own would cost them more than the proxying itself.

Timeouts suit long generations: connecting is short (a workload that is down answers 502 at
once), reading is per chunk with no total (a stream may last hours; a silence past the read
timeout is a 504 before the response starts, a cut connection after). The client keeps no
cookies and reads no proxy settings from the environment: it never carries one caller's state
to another, nor sends a workload's traffic anywhere but the workload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from starlette.types import Receive, Scope, Send

from proxy import metrics
from proxy.access import Target
from proxy.errors import ProxyError
from proxy.headers import RawHeaders, downstream_headers, upstream_request_headers
from proxy.settings import ProxySettings
from proxy.upstream import Connection, Pool, Unreachable, UpstreamError, UpstreamTimeout

log = logging.getLogger("gpubroker.proxy")

# How long an exchange runs before it watches for its caller leaving: the longest an abandoned
# request goes on upstream without a reason to.
WATCH_AFTER_SECONDS = 0.1


def upstream_client(settings: ProxySettings) -> Pool:
    """The one client for every proxied request; use it as an async context manager."""
    return Pool(settings)


class _CallerLeft(Exception):
    """The caller disconnected while its request body was being sent up."""


class Exchange:
    """One proxied request, as an ASGI app: sent up, answered down, dropped when the caller leaves.

    From the moment the request body is sent, a watcher waits for the caller to disconnect and
    then cancels the exchange: a caller that gives up on a long generation, before its first
    byte or in the middle of its stream, closes the upstream request, so the workload stops
    instead of generating for nobody.
    """

    def __init__(
        self,
        target: Target,
        path: str,
        query: bytes,
        pool: Pool,
        on_unreachable: Callable[[Target], None],
    ) -> None:
        self.target = target
        self.path = path
        self.query = query
        self.pool = pool
        self.on_unreachable = on_unreachable
        self._task: asyncio.Task[object] | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._finished = False
        self._left = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._task = asyncio.current_task()
        connection: Connection | None = None
        try:
            method: str = scope["method"]
            head, framing = self._head(scope)
            body = None if framing is None else self._body(receive, framing)
            if body is None:
                self._watch(receive)
            started = time.perf_counter()
            try:
                connection = await self.pool.send(
                    self.pool.base(self.target.upstream.base_url).origin,
                    head,
                    body,
                    head_only=method == "HEAD",
                )
            except UpstreamTimeout:
                raise self._timeout() from None
            except Unreachable as exc:
                raise self._unreachable(exc) from None
            finally:
                metrics.HTTP_LATENCY.observe(time.perf_counter() - started)
            self._watch(receive)  # if the upstream answered before it read the whole body
            await self._relay(connection, send)
        except _CallerLeft:
            pass  # the caller left mid-upload: nobody to answer
        except asyncio.CancelledError:
            if not self._left:
                raise
            if self._task is not None:
                self._task.uncancel()  # the watcher's doing: the caller left, and that is all
        finally:
            self._finished = True
            if self._watch_timer is not None:
                self._watch_timer.cancel()
            if self._watcher is not None:
                self._watcher.cancel()
            if connection is not None and not connection.reusable():
                connection.abort()

    def _head(self, scope: Scope) -> tuple[bytes, bytes | None]:
        """The request line and headers, and how its body is framed (None: it has none)."""
        caller: RawHeaders = scope["headers"]
        framing = _framing(caller)
        headers = upstream_request_headers(
            caller,
            self.target.credentials,
            client_host=scope["client"][0] if scope.get("client") else None,
            scheme=scope.get("scheme", "http"),
            prefix=self.target.prefix,
        )
        if framing == b"chunked":
            headers.append((b"transfer-encoding", b"chunked"))
        base = self.pool.base(self.target.upstream.base_url)
        parts = [scope["method"].encode("latin-1"), b" ", base.path, self.path.encode("latin-1")]
        if self.query:
            parts += (b"?", self.query)
        parts += (b" HTTP/1.1\r\nhost: ", base.host, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        return b"".join(parts), framing

    async def _body(self, receive: Receive, framing: bytes) -> AsyncIterator[bytes]:
        chunked = framing == b"chunked"
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _CallerLeft
            chunk: bytes = message.get("body", b"")
            if chunk:
                metrics.HTTP_UP.inc(len(chunk))
                yield b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
            if not message.get("more_body", False):
                break
        if chunked:
            yield b"0\r\n\r\n"
        self._watch(receive)  # the body is read: from now on `receive` only says who left

    async def _relay(self, upstream: Connection, send: Send) -> None:
        relayed = downstream_headers(
            upstream.headers, base_url=self.target.upstream.base_url, prefix=self.target.prefix
        )
        await send({"type": "http.response.start", "status": upstream.status, "headers": relayed})
        metrics.HTTP_OUTCOMES[min(upstream.status // 100, 5)].inc()
        broken: str | None = None
        while True:
            if upstream.pending:
                body = upstream.take()
                more = not upstream.complete
                self._finished = not more
                await send({"type": "http.response.body", "body": body, "more_body": more})
                metrics.HTTP_DOWN.inc(len(body))
                if more:
                    continue
                break
            if upstream.complete:
                self._finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                break
            if upstream.error is not None:
                broken = upstream.error
                break
            try:
                await upstream.more()
            except UpstreamTimeout:
                broken = "read timeout"
                break
        if broken is None:
            self.pool.release(upstream)
            return
        # Too late for an error status: end without completing the response, so the server
        # drops the connection and the caller sees a cut body, not a short one.
        log.warning("workload of %s broke off its response: %s", self.target.rental_id, broken)

    def _watch(self, receive: Receive) -> None:
        """Watch for the caller leaving from `WATCH_AFTER_SECONDS` into the exchange on."""
        if self._watch_timer is None:
            loop = asyncio.get_running_loop()
            self._watch_timer = loop.call_later(WATCH_AFTER_SECONDS, self._start_watcher, receive)

    def _start_watcher(self, receive: Receive) -> None:
        if not self._finished:
            loop = asyncio.get_running_loop()
            self._watcher = loop.create_task(_until_disconnect(receive, self))

    def caller_left(self) -> None:
        if not self._finished and self._task is not None:
            self._left = True
            self._task.cancel()

    def _timeout(self) -> ProxyError:
        metrics.HTTP_TIMEOUTS.inc()
        return ProxyError(
            504,
            "provider_error",
            f"the workload of rental {self.target.rental_id} did not answer in time "
            "(GPUBROKER_PROXY_READ_TIMEOUT_SECONDS); retry, or check that it is not stuck",
        )

    def _unreachable(self, exc: UpstreamError) -> ProxyError:
        """502; what is remembered about the target is dropped, so a retry looks again."""
        log.info("workload of %s unreachable: %s", self.target.rental_id, exc)
        metrics.HTTP_UNREACHABLE.inc()
        self.on_unreachable(self.target)
        return ProxyError(
            502,
            "provider_error",
            f"the workload of rental {self.target.rental_id} could not be reached "
            f"({str(exc).partition(':')[0]}); it may still be starting or may have stopped: "
            "retry in a moment",
        )


def _framing(headers: RawHeaders) -> bytes | None:
    """b"chunked" for a body of unknown length, b"length" for a counted one, None for none."""
    framing: bytes | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return b"chunked"
        if lowered == b"content-length" and value != b"0":
            framing = b"length"
    return framing


async def _until_disconnect(receive: Receive, exchange: Exchange) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the rest of a request body the upstream did not read
    exchange.caller_left()
