"""Headers across the proxy: what goes up to the workload and what comes back down.

Up: hop-by-hop headers (RFC 9110 7.6.1: Connection, Keep-Alive, Proxy-*, TE, Trailer,
Transfer-Encoding, Upgrade, and whatever Connection names) describe one connection and are
dropped; so are `Host` (the upstream URL decides it), `Expect` (the proxy reads the body itself),
the caller's `Forwarded` and `X-Forwarded-*` (the proxy states those facts itself), and the
caller's `Authorization` and the broker's own `gpubroker_key` cookie, which are the caller's
credentials for the broker, not for the workload. The upstream's credentials are added instead,
with `X-Forwarded-For`, `-Proto` and `-Prefix` so the workload can tell where it is.

Down: hop-by-hop headers again, `Date` and `Server` (the broker's server sends its own), and
two rewrites a reverse proxy under a path needs: a
`Location` on the upstream is moved under the connect path, and every cookie the workload sets
is scoped to the connect path (its `Domain` dropped), so a cookie of one rental's workload is
never sent to another rental's or to the broker's API.
Pure functions over raw `(bytes, bytes)` pairs, the ASGI form, so nothing is decoded twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {b"host", b"expect", b"authorization", b"cookie", b"forwarded"}
# The broker's server sets its own; two of each would confuse clients (nginx hides them too).
_NOT_RELAYED = HOP_BY_HOP | {b"date", b"server"}
KEY_COOKIE = "gpubroker_key"


def header_bytes(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The size of the headers as sent: name, colon and space, value, CRLF."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names the `Connection` header lists: hop-by-hop for this message."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return frozenset(named)


def parse_cookies(values: Iterable[bytes]) -> list[tuple[str, str]]:
    """The name=value pairs of `Cookie` headers, in order; malformed pairs are kept whole."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        for part in value.decode("latin-1").split(";"):
            name, _, rest = part.strip().partition("=")
            if name:
                pairs.append((name, rest))
    return pairs


@dataclass(frozen=True)
class Credentials:
    """An upstream's credential headers, encoded once: their lowercase names, and the pairs."""

    names: frozenset[bytes]
    pairs: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Credentials:
        pairs = tuple(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        )
        return cls(frozenset(name for name, _ in pairs), pairs)


def upstream_request_headers(
    caller: RawHeaders,
    credentials: Mapping[str, str] | Credentials,
    *,
    client_host: str | None,
    scheme: str,
    prefix: str,
) -> RawHeaders:
    """The caller's end-to-end headers, minus its credentials, plus the upstream's."""
    if not isinstance(credentials, Credentials):
        credentials = Credentials.of(credentials)
    dropped = _NOT_FORWARDED | credentials.names
    forwarded: RawHeaders = []
    cookies: list[bytes] = []
    named: list[bytes] = []
    forwarded_for = b""
    for name, value in caller:
        lowered = name.lower()
        if lowered == b"cookie":
            cookies.append(value)
        elif lowered == b"x-forwarded-for":
            forwarded_for = value
        elif lowered not in dropped and not lowered.startswith(b"x-forwarded-"):
            forwarded.append((lowered, value))
        elif lowered == b"connection":
            named.append(value)
    if named:  # what Connection lists is hop-by-hop too (rare: drop it after the fact)
        listed = connection_named((b"connection", value) for value in named)
        forwarded = [pair for pair in forwarded if pair[0] not in listed]
    if cookies:
        kept = [f"{n}={v}" for n, v in parse_cookies(cookies) if n != KEY_COOKIE]
        if kept and b"cookie" not in credentials.names:
            forwarded.append((b"cookie", "; ".join(kept).encode("latin-1")))
    if client_host and b"x-forwarded-for" not in credentials.names:
        chain = forwarded_for + b", " if forwarded_for else b""
        forwarded.append((b"x-forwarded-for", chain + client_host.encode("latin-1")))
    if b"x-forwarded-proto" not in credentials.names:
        forwarded.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    if b"x-forwarded-prefix" not in credentials.names:
        forwarded.append((b"x-forwarded-prefix", prefix.rstrip("/").encode("latin-1")))
    forwarded.extend(credentials.pairs)
    return forwarded


def downstream_headers(upstream: RawHeaders, *, base_url: str, prefix: str) -> RawHeaders:
    """The workload's response headers as the caller gets them."""
    result: RawHeaders = []
    named: list[bytes] = []
    for name, value in upstream:
        lowered = name.lower()
        if lowered in _NOT_RELAYED:
            if lowered == b"connection":
                named.append(value)
            continue
        if lowered == b"location":
            value = relocate(value.decode("latin-1"), base_url, prefix).encode("latin-1")
        elif lowered == b"set-cookie":
            value = scope_cookie(value.decode("latin-1"), prefix).encode("latin-1")
        result.append((lowered, value))
    if named:  # what Connection lists is hop-by-hop too (rare: drop it after the fact)
        listed = connection_named((b"connection", value) for value in named)
        result = [pair for pair in result if pair[0] not in listed]
    return result


def relocate(location: str, base_url: str, prefix: str) -> str:
    """A redirect target on the upstream, moved under the connect path; others unchanged.

    Like nginx's `proxy_redirect default`: an absolute URL under the base, or an absolute path
    under the base's path, is rewritten; a relative reference already resolves correctly.
    """
    base = base_url.rstrip("/")
    base_path = urlsplit(base).path
    if location == base or location.startswith(base + "/"):
        return prefix + location[len(base) :].lstrip("/")
    if location.startswith("/") and not location.startswith("//"):
        if not base_path:
            return prefix + location.lstrip("/")
        if location == base_path or location.startswith(base_path + "/"):
            return prefix + location[len(base_path) :].lstrip("/")
    return location


def scope_cookie(set_cookie: str, prefix: str) -> str:
    """A `Set-Cookie` value with `Path` set to the connect path and no `Domain`."""
    cookie, *attributes = set_cookie.split(";")
    kept = [
        attribute.strip()
        for attribute in attributes
        if attribute.strip().split("=", 1)[0].strip().lower() not in ("path", "domain")
    ]
    return "; ".join([cookie.strip(), *kept, f"Path={prefix}"])
