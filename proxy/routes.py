"""`ANY /v1/rentals/{id}/connect/{path}`: the rented workload, over HTTP or WebSocket.

Every request runs the same gauntlet before a byte moves: the headers' total size (431), the
raw path (400, see `paths`), the caller's key and the rental's state (`access.Gatekeeper`),
then `forward` or `websocket.relay` to the rental's own upstream. A browser that arrives with
`?gpubroker_key=<rental_key>` on a GET is redirected to the same URL without it, holding the key
in an HttpOnly cookie scoped to this rental's connect path, so the page's own requests and
WebSockets are authorised too and the key leaves the address bar.

The route is a plain Starlette route on purpose: it needs nothing from FastAPI's parameter
parsing, which would only add work to the hottest path of the broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import httpx
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Scope
from starlette.websockets import WebSocket

from proxy import forward as http
from proxy import websocket as ws
from proxy.access import CallerKey, Gatekeeper, KeySource, Target, caller_key
from proxy.errors import ProxyError, unauthorized
from proxy.headers import KEY_COOKIE, header_bytes
from proxy.lookup import ConnectLookup
from proxy.paths import connect_prefix, forward_path
from proxy.settings import ProxySettings

CONNECT_ROUTE = "/v1/rentals/{rental_id}/connect/{path:path}"
# HTTP's and WebDAV's methods; not TRACE (it would echo the provider's credentials back to the
# caller) nor CONNECT (a tunnel to anywhere), which are 405s.
METHODS = (
    *("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH"),
)

router = APIRouter(tags=["connect"])


@dataclass
class Admission:
    """A request that may proceed: where to, which path and query to send, and the key used."""

    target: Target
    path: str
    query: bytes
    key: CallerKey


class Connector:
    """The proxy's services on `app.state.proxy`; the shared client is `app.state.proxy_client`."""

    def __init__(self, lookup: ConnectLookup, settings: ProxySettings) -> None:
        self.settings = settings
        self.gatekeeper = Gatekeeper(lookup, settings.cache_seconds)

    async def admit(self, scope: Scope, rental_id: str) -> Admission:
        """Size, path and key checks, then the gatekeeper's; raises `ProxyError` to refuse."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if header_bytes(headers) > self.settings.max_header_bytes:
            raise ProxyError(
                431,
                "invalid_request",
                f"the request headers exceed {self.settings.max_header_bytes} bytes in total",
            )
        path = forward_path(scope.get("raw_path") or scope["path"].encode())
        key, query = caller_key(headers, scope.get("query_string", b""))
        if key is None:
            raise unauthorized(
                "a key is required: Authorization: Bearer <account key or rental_key>"
            )
        return Admission(await self.gatekeeper.admit(rental_id, key), path, query, key)


async def connect_http(request: Request) -> ASGIApp:
    connector: Connector = request.app.state.proxy
    admission = await connector.admit(request.scope, request.path_params["rental_id"])
    if admission.key.source is KeySource.QUERY and request.method in ("GET", "HEAD"):
        return _remember_key(request, admission)
    client: httpx.AsyncClient = request.app.state.proxy_client
    return http.forward(
        request,
        admission.target,
        admission.path,
        admission.query,
        client,
        on_unreachable=connector.gatekeeper.forget,
    )


def _remember_key(request: Request, admission: Admission) -> Response:
    """Trade a key in the URL for a cookie on this rental's connect path, and drop it."""
    prefix = connect_prefix(admission.target.rental_id)
    location = prefix + admission.path
    if admission.query:
        location += "?" + admission.query.decode("latin-1")
    response = RedirectResponse(location, status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        admission.key.secret,
        path=prefix,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def connect_websocket(websocket: WebSocket) -> None:
    connector: Connector = websocket.app.state.proxy
    try:
        admission = await connector.admit(websocket.scope, websocket.path_params["rental_id"])
    except ProxyError as error:
        await ws.deny(websocket, error)
        return
    await ws.relay(websocket, admission.target, admission.path, admission.query, connector.settings)


# Starlette runs the ASGI app a handler returns, of which a Response is one kind.
_as_endpoint = cast(Callable[[Request], Awaitable[Response]], connect_http)
router.add_route(CONNECT_ROUTE, _as_endpoint, methods=METHODS, include_in_schema=False)
router.add_websocket_route(CONNECT_ROUTE, connect_websocket)
