"""Which upstream URL a connect request may reach: the rental's own base, and nothing else.

The path after `/connect/` is taken from the raw request target, before any decoding, because
the decoded path hides the tricks: `%2f` becomes a slash and `%2e%2e` a `..` that a URL library
would then resolve above the base. So the raw path is refused outright when any segment is, or
decodes to, `.` or `..`, when it holds an encoded slash or backslash, a backslash, a NUL, a
control character, or when it starts like an absolute or scheme-relative URL (`http:...`,
`//host`). What remains is appended to the upstream base verbatim, so the workload sees exactly
the escapes the caller sent, and the host always comes from the base, never from the request.
Pure functions; the refusal is a 400 `invalid_request`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from proxy.errors import ProxyError

CONNECT_MARK = "/connect/"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_FORBIDDEN_ESCAPES = ("%2f", "%5c", "%00")


class BadPath(ProxyError):
    """A connect path that could leave the rental's upstream, or is not a path at all."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, "invalid_request", f"malformed connect path: {reason}")


def connect_prefix(rental_id: str) -> str:
    """The public path under which a rental's workload is reached."""
    return f"/v1/rentals/{rental_id}{CONNECT_MARK}"


def forward_path(raw_path: bytes) -> str:
    """The part of a raw `/v1/rentals/{id}/connect/...` target to append to the upstream base.

    The rental id is one segment (the router matched it), so the first `/connect/` after it
    ends the prefix. Raises `BadPath` for anything that could escape the base.
    """
    try:
        target = raw_path.decode("ascii")
    except UnicodeDecodeError:
        raise BadPath("the path must be ASCII (percent-encode anything else)") from None
    start = target.find(CONNECT_MARK, len("/v1/rentals/"))
    if start < 0:
        raise BadPath("no /connect/ in the path")
    rest = target[start + len(CONNECT_MARK) :]
    check(rest)
    return rest


def check(rest: str) -> None:
    """Refuse a relative path that could name anything but a path below the base."""
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in rest):
        raise BadPath("control characters and spaces must be percent-encoded")
    if "\\" in rest:
        raise BadPath("backslashes are not allowed")
    lowered = rest.lower()
    for escape in _FORBIDDEN_ESCAPES:
        if escape in lowered:
            raise BadPath(f"{escape.upper()} (an encoded slash, backslash or NUL) is not allowed")
    if rest.startswith("/"):
        raise BadPath("the path after /connect/ must not start with another slash")
    if _SCHEME.match(rest):
        raise BadPath("an absolute URL cannot be proxied; give a path on the workload")
    for segment in rest.split("/"):
        if unquote(segment) in (".", ".."):
            raise BadPath("'.' and '..' segments are not allowed")


def upstream_url(base_url: str, rest: str, query: bytes) -> str:
    """The base, a slash, the checked path, and the caller's query string as sent."""
    url = f"{base_url.rstrip('/')}/{rest}"
    if query:
        url = f"{url}?{query.decode('latin-1')}"
    return url
