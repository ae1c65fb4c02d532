"""`ANY /v1/rentals/{id}/connect/{path}`: the rented workload, over HTTP or WebSocket.

Every request runs the same gauntlet before a byte moves: the headers' total size (431), the
raw path (400, see `paths`), the caller's key and the rental's state (`access.Gatekeeper`),
then `forward` or `websocket.relay` to the rental's own upstream. A browser that arrives with
`?gpubroker_key=<rental_key>` on a GET is redirected to the same URL without it, holding the key
in an HttpOnly cookie scoped to this rental's connect path, so the page's own requests and
WebSockets are authorised too and the key leaves the address bar.

The route is a plain Starlette route on purpose: it needs nothing from FastAPI's parameter
parsing, which would only add work to the hottest path of the broker. An HTTP request does not
even reach the router: `FastPath`, installed in front of the app's middleware, hands it to the
same `Connector.respond` directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, Request
from starlette.datastructures import State
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from proxy import forward as http
from proxy import websocket as ws
from proxy.access import CallerKey, Gatekeeper, KeySource, Target, caller_key
from proxy.errors import ProxyError, error_response, unauthorized
from proxy.headers import KEY_COOKIE, header_bytes
from proxy.lookup import ConnectLookup
from proxy.paths import forward_path
from proxy.settings import ProxySettings
from proxy.upstream import Pool

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
        self.touched = lookup.touched

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
        admission = Admission(await self.gatekeeper.admit(rental_id, key), path, query, key)
        self.touched(rental_id)
        return admission

    async def respond(self, scope: Scope, rental_id: str, pool: Pool) -> ASGIApp:
        """The answer to an HTTP connect request, as an ASGI app; raises `ProxyError` to refuse."""
        admission = await self.admit(scope, rental_id)
        if admission.key.source is KeySource.QUERY and scope["method"] in ("GET", "HEAD"):
            return _remember_key(scope, admission)
        return http.Exchange(
            admission.target,
            admission.path,
            admission.query,
            pool,
            on_unreachable=self.gatekeeper.forget,
        )


async def connect_http(request: Request) -> ASGIApp:
    connector: Connector = request.app.state.proxy
    pool: Pool = request.app.state.proxy_client
    return await connector.respond(request.scope, request.path_params["rental_id"], pool)


def _remember_key(scope: Scope, admission: Admission) -> Response:
    """Trade a key in the URL for a cookie on this rental's connect path, and drop it."""
    prefix = admission.target.prefix
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
        secure=scope.get("scheme") == "https",
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


class FastPath:
    """ASGI middleware: an HTTP connect request goes straight to the proxy, the rest to `app`.

    What the route would reach through the framework's layers (error pages, per-route metrics,
    routing, request objects) costs more than the proxy's own work on a small request, and none
    of it is needed: the proxy renders its own errors and counts its own metrics
    (`gpubroker_proxy_*`). So a request whose path is `/v1/rentals/{id}/connect/...`, with a
    method the route allows, is answered here; anything else (another method's 405, a WebSocket,
    a path with NUL) takes the ordinary way, to the same route.
    """

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rental_id = _connect_rental(scope) if scope["type"] == "http" else None
        if rental_id is None:
            await self.app(scope, receive, send)
            return
        connector: Connector = self.state.proxy
        try:
            answer = await connector.respond(scope, rental_id, self.state.proxy_client)
            await answer(scope, receive, send)
        except ProxyError as error:  # raised before anything was sent
            await error_response(error)(scope, receive, send)


def install_fast_path(app: Any) -> None:
    """Put `FastPath` in front of an app's middleware stack (inside what wraps it later)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: FastPath(build(), app.state)


_ROUTE_START = "/v1/rentals/"
_FAST_METHODS = frozenset(METHODS)


def _connect_rental(scope: Scope) -> str | None:
    """The rental id of an HTTP connect request the fast path may answer, else None."""
    path: str = scope["path"]
    if not path.startswith(_ROUTE_START) or scope["method"] not in _FAST_METHODS:
        return None
    end = path.find("/", len(_ROUTE_START))
    if end <= len(_ROUTE_START) or not path.startswith("/connect/", end):
        return None
    if scope.get("root_path") or "\x00" in path:
        return None
    return path[len(_ROUTE_START) : end]


async def connect_websocket(websocket: WebSocket) -> None:
    connector: Connector = websocket.app.state.proxy
    try:
        admission = await connector.admit(websocket.scope, websocket.path_params["rental_id"])
    except ProxyError as error:
        await ws.deny(websocket, error)
        return
    await ws.relay(
        websocket,
        admission.target,
        admission.path,
        admission.query,
        connector.settings,
        touched=connector.touched,
    )


# Starlette runs the ASGI app a handler returns, of which a Response is one kind.
_as_endpoint = cast(Callable[[Request], Awaitable[Response]], connect_http)
router.add_route(CONNECT_ROUTE, _as_endpoint, methods=METHODS, include_in_schema=False)
router.add_websocket_route(CONNECT_ROUTE, connect_websocket)
