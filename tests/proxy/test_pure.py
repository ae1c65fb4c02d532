"""The proxy's pure parts: path checks, header rewriting, and the lookup memo's lifetime."""

from __future__ import annotations

import asyncio

import pytest

from proxy.access import KeySource, caller_key
from proxy.cache import Memo
from proxy.headers import (
    downstream_headers,
    relocate,
    scope_cookie,
    upstream_request_headers,
)
from proxy.paths import BadPath, forward_path, upstream_url

PREFIX = "/v1/rentals/rnt_1/connect/"


def raw_headers(block: str) -> list[tuple[bytes, bytes]]:
    """Header lines ("Name: value", one a line) as a server lists them."""
    headers = []
    for line in block.strip().splitlines():
        name, value = line.strip().split(": ", 1)
        headers.append((name.encode(), value.encode()))
    return headers


@pytest.mark.parametrize(
    ("raw", "rest"),
    [
        (b"/v1/rentals/rnt_1/connect/", ""),
        (b"/v1/rentals/rnt_1/connect/v1/chat/completions", "v1/chat/completions"),
        (b"/v1/rentals/rnt_1/connect/api/a%20b/llama3:latest", "api/a%20b/llama3:latest"),
        (b"/v1/rentals/rnt_1/connect/a//b/...x/..c", "a//b/...x/..c"),
        (b"/v1/rentals/rnt_1/connect/files/%252e%252e", "files/%252e%252e"),
    ],
)
def test_paths_below_the_base_pass_verbatim(raw: bytes, rest: str) -> None:
    assert forward_path(raw) == rest


@pytest.mark.parametrize(
    "rest",
    [
        "..",
        "a/../b",
        "a/%2e%2E/b",
        "%2e",
        "a%2fb",
        "a%5Cb",
        "a\\b",
        "a%00b",
        "a\x00b",
        "a b",
        "/etc",
        "http://h/x",
        "git+ssh:x",
        "caf\u00e9",
    ],
)
def test_paths_that_could_leave_the_base_are_refused(rest: str) -> None:
    with pytest.raises(BadPath) as refused:
        forward_path(f"/v1/rentals/rnt_1/connect/{rest}".encode())
    assert refused.value.status == 400 and refused.value.code == "invalid_request"


def test_the_upstream_url_is_the_base_plus_the_path_and_query() -> None:
    assert upstream_url("http://h:1/base/", "v1/models", b"") == "http://h:1/base/v1/models"
    assert upstream_url("http://h:1", "", b"a=1&b=%2F") == "http://h:1/?a=1&b=%2F"


def test_request_headers_lose_hop_by_hop_and_caller_credentials() -> None:
    caller = raw_headers(
        """
        Host: broker
        Authorization: Bearer gbk_secret
        Connection: keep-alive, X-Hop
        X-Hop: 1
        TE: trailers
        Upgrade: h2c
        Transfer-Encoding: chunked
        Cookie: a=1; gpubroker_key=rk_x
        X-Api-Key: caller
        X-Forwarded-For: 10.0.0.1
        X-Forwarded-Host: evil.example
        Forwarded: host=evil.example
        Accept: text/event-stream
        """
    )

    sent = upstream_request_headers(
        caller, {"X-Api-Key": "provider"}, client_host="127.0.0.2", scheme="https", prefix=PREFIX
    )

    assert sent == [
        (b"accept", b"text/event-stream"),
        (b"cookie", b"a=1"),
        (b"x-forwarded-for", b"10.0.0.1, 127.0.0.2"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-prefix", b"/v1/rentals/rnt_1/connect"),
        (b"x-api-key", b"provider"),
    ]


def test_response_headers_are_relocated_and_scoped() -> None:
    upstream = raw_headers(
        """
        Content-Type: text/html
        Date: Tue, 24 Nov 2026 12:00:00 GMT
        Server: uvicorn
        Connection: close
        Keep-Alive: timeout=5
        Transfer-Encoding: chunked
        Location: http://p/connect/gi_1/lab?x=1
        Set-Cookie: sid=1; Domain=p; Path=/; HttpOnly
        """
    )

    relayed = downstream_headers(upstream, base_url="http://p/connect/gi_1", prefix=PREFIX)

    assert relayed == [
        (b"content-type", b"text/html"),
        (b"location", f"{PREFIX}lab?x=1".encode()),
        (b"set-cookie", f"sid=1; HttpOnly; Path={PREFIX}".encode()),
    ]


@pytest.mark.parametrize(
    ("location", "base", "expected"),
    [
        ("/lab", "http://c:8000", f"{PREFIX}lab"),
        ("/connect/gi_1/tree", "http://p/connect/gi_1", f"{PREFIX}tree"),
        ("/elsewhere", "http://p/connect/gi_1", "/elsewhere"),
        ("http://p/connect/gi_1", "http://p/connect/gi_1", PREFIX),
        ("https://example.com/x", "http://c:8000", "https://example.com/x"),
        ("//example.com/x", "http://c:8000", "//example.com/x"),
        ("tree?x=1", "http://c:8000", "tree?x=1"),
    ],
)
def test_relocate(location: str, base: str, expected: str) -> None:
    assert relocate(location, base, PREFIX) == expected


def test_scope_cookie_without_attributes() -> None:
    assert scope_cookie("a=b", PREFIX) == f"a=b; Path={PREFIX}"


def test_the_callers_key_comes_from_the_header_then_the_query_then_the_cookie() -> None:
    header = [(b"authorization", b"Bearer gbk_h"), (b"cookie", b"gpubroker_key=rk_c")]
    cookie = [(b"authorization", b"token jupyter"), (b"cookie", b"x=1; gpubroker_key=rk_c")]

    from_header, query = caller_key(header, b"a=1&gpubroker_key=rk_q&b=2")
    from_query, _ = caller_key(cookie, b"gpubroker_key=rk%5Fq")
    from_cookie, untouched = caller_key(cookie, b"a=1")
    nothing, _ = caller_key([], b"")

    assert from_header is not None and from_header.source is KeySource.HEADER
    assert from_header.secret == "gbk_h" and query == b"a=1&b=2"
    assert from_query is not None and (from_query.secret, from_query.source) == (
        "rk_q",
        KeySource.QUERY,
    )
    assert from_cookie is not None and (from_cookie.secret, from_cookie.source) == (
        "rk_c",
        KeySource.COOKIE,
    )
    assert untouched == b"a=1" and nothing is None
    assert "rk_c" not in repr(from_cookie)


def test_the_memo_keeps_values_for_its_ttl_and_shares_one_load() -> None:
    now = [0.0]
    memo: Memo[str, int] = Memo(5, clock=lambda: now[0])
    loads: list[str] = []

    async def load() -> int:
        loads.append("load")
        await asyncio.sleep(0.01)
        return len(loads)

    async def scenario() -> list[int]:
        together = await asyncio.gather(*(memo.get("k", load) for _ in range(50)))
        now[0] = 4.9
        cached = await memo.get("k", load)
        now[0] = 5.1
        expired = await memo.get("k", load)
        memo.forget("k")
        forgotten = await memo.get("k", load)
        return [*set(together), cached, expired, forgotten]

    assert asyncio.run(scenario()) == [1, 1, 2, 3]


def test_a_failed_load_is_shared_and_not_kept() -> None:
    memo: Memo[str, int] = Memo(60)
    calls: list[int] = []

    async def failing() -> int:
        calls.append(1)
        await asyncio.sleep(0.01)
        raise RuntimeError("provider down")

    async def scenario() -> list[BaseException | int]:
        return await asyncio.gather(
            *(memo.get("k", failing) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert [type(result) for result in results] == [RuntimeError] * 3
    assert len(calls) == 1
    assert asyncio.run(scenario()) and len(calls) == 2


def test_a_load_in_flight_when_its_key_is_forgotten_is_not_kept() -> None:
    """It may have read the state from before the change that made the key be forgotten."""
    memo: Memo[str, str] = Memo(60)
    state = ["before"]

    async def load() -> str:
        seen = state[0]
        await asyncio.sleep(0.01)
        return seen

    async def scenario() -> list[str]:
        in_flight = asyncio.ensure_future(memo.get("k", load))
        await asyncio.sleep(0)  # the load has read "before"
        state[0] = "after"
        memo.forget("k")
        stale = await in_flight
        return [stale, await memo.get("k", load)]

    assert asyncio.run(scenario()) == ["before", "after"]


def test_forget_where_drops_matching_values_and_loads() -> None:
    memo: Memo[tuple[str, str], int] = Memo(60)
    memo.put(("r1", "a"), 1)
    memo.put(("r1", "b"), 2)
    memo.put(("r2", "a"), 3)

    async def load() -> int:
        return 9

    memo.forget_where(lambda key, _: key[0] == "r1")

    assert asyncio.run(memo.get(("r1", "a"), load)) == 9
    assert asyncio.run(memo.get(("r2", "a"), load)) == 3
