"""WebSockets through the proxy: JupyterLab kernels, ComfyUI progress, any live channel.

The caller's handshake is checked like any connect request, then the upstream handshake is made
with the `websockets` client (the caller's subprotocols offered, the upstream's credentials in
place of the caller's) before the caller's is accepted, so a workload that refuses is a clean
HTTP error (502) rather than an accepted socket that closes at once. Then messages are relayed
both ways as they come, text as text and binary as binary, and when either side closes, the
other is closed with the same code and reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from proxy import metrics
from proxy.access import Target
from proxy.errors import ProxyError, error_response
from proxy.headers import RawHeaders, upstream_request_headers
from proxy.paths import upstream_url
from proxy.settings import ProxySettings

log = logging.getLogger("gpubroker.proxy")

# Set by the websockets client itself; the caller's values describe the caller's handshake.
_HANDSHAKE = (b"sec-websocket-", b"origin", b"content-length")
# Close codes that may not appear in a close frame, and what to send instead.
_RESERVED_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


async def deny(websocket: WebSocket, error: ProxyError) -> None:
    """Refuse a handshake with the API's error shape where the server allows it."""
    response = error_response(error)
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008, reason=error.message[:120])


async def relay(
    websocket: WebSocket,
    target: Target,
    path: str,
    query: bytes,
    settings: ProxySettings,
    *,
    touched: Callable[[str], None],
) -> None:
    """Open the upstream socket, accept the caller's, and relay until either closes; each of
    the caller's messages is reported to `touched` (the rental is in use)."""
    scope = websocket.scope
    caller: RawHeaders = scope["headers"]
    headers = upstream_request_headers(
        [(name, value) for name, value in caller if not name.lower().startswith(_HANDSHAKE)],
        target.upstream.headers,
        client_host=scope["client"][0] if scope.get("client") else None,
        scheme="https" if scope.get("scheme") == "wss" else "http",
        prefix=target.prefix,
    )
    url = "ws" + upstream_url(target.upstream.base_url, path, query).removeprefix("http")
    try:
        with metrics.upstream_timer("websocket"):
            upstream = await connect(
                url,
                additional_headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers],
                subprotocols=scope.get("subprotocols") or None,
                open_timeout=settings.connect_timeout_seconds,
                max_size=settings.max_websocket_message_bytes,
                compression=None,
                user_agent_header=None,
                proxy=None,
            )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        log.info("workload of %s refused a WebSocket: %s", target.rental_id, type(exc).__name__)
        metrics.count("websocket", "timeout" if isinstance(exc, TimeoutError) else "refused")
        await deny(
            websocket,
            ProxyError(
                504 if isinstance(exc, TimeoutError) else 502,
                "provider_error",
                f"the workload of rental {target.rental_id} did not accept the WebSocket "
                f"({type(exc).__name__})",
            ),
        )
        return
    metrics.count("websocket", "101")
    try:
        await websocket.accept(subprotocol=upstream.subprotocol)
        async with anyio.create_task_group() as tasks:
            used = partial(touched, target.rental_id)
            tasks.start_soon(_caller_to_upstream, websocket, upstream, tasks.cancel_scope, used)
            await _upstream_to_caller(upstream, websocket)
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.close()


async def _caller_to_upstream(
    websocket: WebSocket,
    upstream: ClientConnection,
    done: anyio.CancelScope,
    touched: Callable[[], None],
) -> None:
    try:
        while True:
            message = await websocket.receive()
            touched()
            if message["type"] == "websocket.disconnect":
                code = _sendable(message.get("code"))
                await upstream.close(code, message.get("reason") or "")
                break
            text = message.get("text")
            payload = text if text is not None else message.get("bytes") or b""
            await upstream.send(payload)
            metrics.WS_UP.inc(len(payload))
    except (ConnectionClosed, WebSocketDisconnect):
        pass  # the other direction sees the close and ends the relay
    done.cancel()


async def _upstream_to_caller(upstream: ClientConnection, websocket: WebSocket) -> None:
    try:
        async for message in upstream:
            if isinstance(message, str):
                await websocket.send_text(message)
            else:
                await websocket.send_bytes(message)
            metrics.WS_DOWN.inc(len(message))
    except ConnectionClosed:
        pass  # closed without a clean handshake: close the caller with what is known
    except OSError:
        return  # the caller is gone; nothing to close
    if websocket.client_state is WebSocketState.CONNECTED:
        reason = (upstream.close_reason or "")[:120]
        try:
            await websocket.close(_sendable(upstream.close_code), reason)
        except OSError:
            return  # the caller left while the close was on its way


def _sendable(code: int | None) -> int:
    if code is None:
        return 1000
    return _RESERVED_CLOSE.get(code, code)
