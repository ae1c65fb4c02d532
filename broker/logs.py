"""The broker's logs: one JSON object per line, a request id on each, and never a secret.

`configure_logging` sets up the process (`gpubroker serve` calls it): one handler on the root
logger writing JSON lines (`GPUBROKER_LOG_FORMAT=json`, the default) or plain text (`text`).
Each line carries `time`, `level`, `logger`, `message`, `request_id` (while a request is being
handled) and whatever structured fields the call passed in `extra` (the rental lifecycle events
carry `event`, `rental_id`, `provider` and `status`).

The request id comes from `RequestIds`, an ASGI wrapper around the whole application (outside
even the 500 handler): an incoming `X-Request-ID` that is short and plain is kept, anything else
is replaced by a fresh one, and the id goes back in the `X-Request-ID` response header of every
HTTP response, error or proxied, and of every WebSocket handshake, accepted or refused. The id
lives in a context variable, so lines logged from worker threads carry it too.

Secrets are kept out in two ways. First, the loggers that would write them are quiet: httpx and
httpcore log each proxied upstream URL at INFO and the stripe library logs API response bodies,
so they are set to WARNING; uvicorn's own handlers (which log each WebSocket handshake with its
query string) are replaced by the root handler at startup. Second, as the last line of defence,
a filter on the root handler rewrites every record before it is written: query strings are cut
from anything that looks like a URL or a path; `gbk_`/`rk_`/`whsec_`/`sk_`-style tokens, Stripe
client secrets, the values of fields named like secrets (`client_secret`, `apiKey`, `token`,
`password`, ...) and `Bearer` or `Authorization` values are masked; and every secret value the
broker knows (its settings' secrets, upstream credentials it has resolved) is replaced wherever
it appears.
"""

from __future__ import annotations

import json
import logging
import re
import secrets as random
import sys
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
MASK = "[redacted]"
# httpx/httpcore: every upstream URL; stripe: API response bodies (client secrets) at DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "stripe", "alembic", "apscheduler", "websockets")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# Loggers that write request lines, URLs or bodies themselves: redacted at the logger too, so
# their records are clean even when someone else (uvicorn's own configuration, run again by every
# uvicorn server the process starts) gives them handlers of their own.
DIRECT_LOGGERS = ("uvicorn.error", "uvicorn.access", "httpx", "httpcore", "stripe", "websockets")
MAX_KNOWN_SECRETS = 1_000

request_id: ContextVar[str | None] = ContextVar("gpubroker_request_id", default=None)

_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_QUERY = re.compile(r"((?:https?|wss?)://[^\s\"'?]*|/[^\s\"'?]*)\?[^\s\"']*")
_TOKEN = re.compile(r"\b(?:gbk|rk|whsec|sk|pk|rk_live|sk_live|sk_test)_[A-Za-z0-9_\-]{6,}")
_AUTHORIZATION = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;]+"
)
_SECRET_FIELD = re.compile(
    r"(?i)([\"']?[\w-]*(?:secret|password|passwd|api_?key|access_?token|token)(?:_?key)?"
    r"\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'\\,;&}]+"
)
_STRIPE_SECRET = re.compile(r"\b[a-z]{2,6}_[A-Za-z0-9]+_secret_[A-Za-z0-9_\-]+")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id", "taskName", "color_message"}
)

_known: dict[str, None] = {}  # insertion-ordered set of secret values to mask
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None
_configured = False


def remember_secret(*values: str | SecretStr | None) -> None:
    """Mask these exact values in every log line from now on (6 characters or longer)."""
    global _known_pattern
    for value in values:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not plain or len(plain) < 6 or plain in _known:
            continue
        with _known_lock:
            if len(_known) >= MAX_KNOWN_SECRETS:
                _known.pop(next(iter(_known)))
            _known[plain] = None
            _known_pattern = None


def _known_secrets() -> re.Pattern[str] | None:
    global _known_pattern
    pattern = _known_pattern
    if pattern is None and _known:
        with _known_lock:
            longest_first = sorted(_known, key=len, reverse=True)
            pattern = _known_pattern = re.compile("|".join(map(re.escape, longest_first)))
    return pattern


def remember_settings_secrets(settings: Any) -> None:
    """Every `SecretStr` field of a settings object (admin key, provider and Stripe keys)."""
    remember_secret(*(v for v in vars(settings).values() if isinstance(v, SecretStr)))


def redact(text: str) -> str:
    """`text` with query strings, key-shaped tokens, credentials and known secrets masked."""
    known = _known_secrets()
    if known is not None:
        text = known.sub(MASK, text)
    text = _QUERY.sub(lambda m: f"{m.group(1)}?{MASK}", text)
    text = _TOKEN.sub(MASK, text)
    text = _STRIPE_SECRET.sub(MASK, text)
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (arguments merged in) and its traceback with `redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None  # formatted above, redacted; never formatted again from source
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in body:
                body[key] = value
        if record.exc_text:
            body["exception"] = record.exc_text
        return json.dumps(body, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def configure_logging(
    log_format: str = "json", level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every logger's records through one redacting handler on the root logger."""
    global _configured
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in DIRECT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
    adopt_uvicorn_loggers()
    _configured = True
    return handler


def adopt_uvicorn_loggers() -> None:
    """Route uvicorn's loggers through the root handler instead of uvicorn's own handlers.

    uvicorn installs its handlers when its server is configured, after `configure_logging`;
    `RequestIds` calls this again when the application starts, which is after that. A logger
    uvicorn switched off (the access log, unless asked for: no handler and no propagation) stays
    off, since uvicorn writes access lines whenever that logger has somewhere to go.
    """
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers and not logger.propagate:
            continue
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        logger.propagate = True


def new_request_id() -> str:
    return random.token_hex(8)


def _incoming_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SANE_ID.match(candidate):
                return candidate
            break
    return new_request_id()


class RequestIds:
    """ASGI wrapper: a request id in a context variable and in the `X-Request-ID` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if _configured:
                adopt_uvicorn_loggers()
            await self.app(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope)
        header = (REQUEST_ID_HEADER.lower().encode(), rid.encode())

        async def send_with_id(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                message["headers"] = [*_without_id(message.get("headers", ())), header]
            elif kind == "websocket.accept":
                message["headers"] = [*_without_id(message.get("headers") or ()), header]
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def _without_id(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in headers if n.lower() != b"x-request-id"]


def install_request_ids(app: Any, settings: Any) -> None:
    """Wrap `app`'s whole middleware stack in `RequestIds` and learn its settings' secrets."""
    remember_settings_secrets(settings)
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestIds(build())
