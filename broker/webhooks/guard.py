"""Where a webhook may be sent: https URLs whose host resolves to public addresses only.

A webhook URL is chosen by a customer and fetched by the broker, so without a check it would let
anyone make the broker call its own network (the database, a cloud metadata service, another
replica's admin routes). The check runs twice: when the endpoint is registered (a URL that names
a private address, or a host that resolves to one, is refused) and before every attempt, because
DNS can change after registration. At delivery the request goes to the very address that was
checked (the host name is kept for the `Host` header and TLS), so a second lookup cannot swap in
another. `GPUBROKER_WEBHOOK_ALLOW_PRIVATE=true` lifts both rules (http, and any address) for
demos and tests on one machine.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL is not one a webhook may be sent to; the message says why."""


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def parse(url: str, *, allow_private: bool) -> SplitResult:
    """The parts of an absolute http(s) URL with a host; `UnsafeUrl` for anything else."""
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError for a port that is out of range or not a number
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeUrl("must be an absolute https:// URL with a host")
    if parts.scheme not in schemes:
        raise UnsafeUrl("must use https")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry a user name or password")
    return parts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (`OSError` when it resolves to none)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _refuse_private(host: str, addresses: list[IPAddress]) -> None:
    private = sorted({str(a) for a in addresses if not is_public(a)})
    if private:
        raise UnsafeUrl(
            f"{host} resolves to a private or reserved address ({', '.join(private)}); "
            "webhooks go to public addresses only"
        )


def check_registration(url: str, *, allow_private: bool) -> str:
    """The URL, cleaned, if a webhook may be registered for it; `UnsafeUrl` if not.

    A host that does not resolve now is accepted (it is checked again before every attempt).
    """
    parts = parse(url, allow_private=allow_private)
    if not allow_private:
        host = parts.hostname or ""
        try:
            addresses = resolve(host, _port(parts))
        except OSError:
            addresses = []
        _refuse_private(host, addresses)
    return parts.geturl()


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL to request, and what keeps the original host name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def target(url: str, *, allow_private: bool) -> Target:
    """Resolve and check `url` now, pinned to the checked address; `UnsafeUrl` if refused."""
    parts = parse(url, allow_private=allow_private)
    if allow_private:
        return Target(parts.geturl())
    host = parts.hostname or ""
    try:
        addresses = resolve(host, _port(parts))
    except OSError as exc:
        raise UnsafeUrl(f"{host} does not resolve: {exc}") from None
    _refuse_private(host, addresses)
    if not addresses:
        raise UnsafeUrl(f"{host} does not resolve")
    address = addresses[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    host_header = f"{host}:{parts.port}" if parts.port else host
    return Target(
        parts._replace(netloc=netloc).geturl(),
        headers={"Host": host_header},
        extensions={"sni_hostname": host},
    )
