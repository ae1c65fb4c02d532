"""Range-checked request parameters: the edge where bad input becomes a 422, not a 500.

Every number, time and cursor a client sends is checked here before any code that could choke on
it (numpy comparisons, `datetime.astimezone`, a 64-bit database column) ever sees it, and a
refusal is a 422 `invalid_request` whose `param` names what to fix. The rules:

- Numbers are finite and bounded: a price per GPU-hour lies in [0, 1,000,000] USD with at most
  six decimals, VRAM in [0, 10,000] GB, GPU counts in [1, 1,024], interruption chances in [0, 1].
- Times are RFC 3339. One without an offset is read as UTC, the API's only zone. Every time lies
  in [1970-01-01, 3000-01-01) once converted to UTC; one that cannot even be converted (year 1
  at +14:00) is refused like any other out-of-range time.
- Cursors are opaque: anything the API did not issue, or that decodes to an out-of-range value,
  is refused with `param: "cursor"`.
- Text never contains NUL characters (PostgreSQL cannot store them): a URL carrying `%00` is
  refused before routing (the connect proxy's own query strings excepted: they are the
  workload's), and body fields use `text(...)`.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from pydantic import AfterValidator, StringConstraints
from starlette.types import ASGIApp, Receive, Scope, Send

from broker.api import FieldRules
from broker.api.errors import error_response, invalid

MAX_PRICE_USD = Decimal(1_000_000)
MAX_VRAM_GB = 10_000
MAX_GPU_COUNT = 1024
MAX_INT64 = 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_CONNECT_PATH = re.compile(r"^/v1/rentals/[^/]+/connect(/|$)")

# `slices=`: whole cards only (the default), slices too, or slices only; read as the catalog's
# `slices` filter (False: whole cards, None: both, True: slices).
SlicesParam = Literal["false", "true", "only"]
SLICES: dict[str, bool | None] = {"false": False, "true": None, "only": True}
SLICES_HELP = "false: whole cards only; true: slices of cards (MIG, time-sliced) too; only: slices"


def _in_range(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of representable times") from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return moment


def moment_in_range(moment: datetime, param: str) -> datetime:
    """`moment` in UTC (naive read as UTC), or a 422 naming `param` when it is out of range."""
    try:
        return _in_range(moment)
    except ValueError as exc:
        raise invalid(f"{param} {exc}", param=param) from None


# A time in a query or body: aware, UTC, within [EARLIEST, LATEST).
Moment = Annotated[datetime, AfterValidator(_in_range)]


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


def text(max_length: int, min_length: int = 1) -> FieldRules:
    """For a `str` field of a request body: bounded in length, anything but NUL."""
    bounds = StringConstraints(min_length=min_length, max_length=max_length)
    return FieldRules(*bounds, AfterValidator(_no_nul))


def one_or_many(value: Any) -> Any:
    """A single string where a list is expected becomes a list of one."""
    return [value] if isinstance(value, str) else value


def decode_cursor_text(cursor: str) -> str:
    """The text inside a base64url cursor (padding optional); ValueError when there is none."""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not base64url text") from exc


def int64(text: str) -> int:
    """A decimal integer that fits a signed 64-bit column; ValueError otherwise."""
    value = int(text)
    if not -MAX_INT64 <= value <= MAX_INT64:
        raise ValueError("out of range")
    return value


def _nul_param(scope: Scope) -> str | None:
    """The name of the URL part that carries a NUL character, or None."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query = scope.get("query_string", b"")
    if b"%00" not in query or _CONNECT_PATH.match(scope.get("path", "")):
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return None


class RejectNulInURL:
    """ASGI middleware: a request whose path or query carries NUL is a 422 before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            param = _nul_param(scope)
            if param is not None:
                response = error_response(
                    422, "invalid_request", f"{param} must not contain NUL characters", param=param
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def reject_nul_in_urls(app: Any) -> None:
    """Install `RejectNulInURL` on a FastAPI app."""
    app.add_middleware(RejectNulInURL)
