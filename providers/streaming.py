"""A large catalog answer read as it arrives: one item at a time, never the whole body at once.

A provider that answers its whole catalog as one JSON list (a million offers is some 200 MB)
would otherwise be held three times over while it is parsed: the body, its decoded text and the
decoded items. Here the body is read in chunks by ijson's C parser, each listed item is decoded
and turned into offers on its own, and then dropped; the interpreter is held for one chunk at a
time, never for the whole answer, so searches keep being answered meanwhile.

The items are found by their path in the answer (`("data",)`: the items of the `data` list).
When none is found the answer was small, so it is read again whole by the provider's ordinary
page parser, which tells an empty catalog from an answer of the wrong shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import ijson
import orjson

from pricing.offer import Offer
from providers.base import MalformedResponse, OfferPage, ProviderUnavailable
from providers.http import ProviderHTTP
from providers.parsing import iter_offers

CHUNK_BYTES = 64 * 1024


class _Body:
    """The answer's body as a file for ijson; keeps its first chunk to re-read a small answer."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.head = b""
        self.complete = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing first, to learn whether the file reads bytes
            return b""
        chunk = next(self._chunks, b"")
        if not chunk:
            self.complete = True
        elif not self.head:
            self.head = chunk
        elif len(self.head) < CHUNK_BYTES:
            self.head += chunk
        return chunk


def stream_offers(
    http: ProviderHTTP,
    path: str,
    items_path: tuple[str, ...],
    parse_one: Callable[[Any], Iterable[Offer]],
    whole: Callable[[Any], OfferPage],
    skipped: list[str],
    **kwargs: Any,
) -> Iterator[Offer]:
    """The offers of `GET path` as its items arrive; a bad item is noted in `skipped`.

    `whole` is the provider's page parser, used on an answer that lists no items at all.
    """
    provider = http.provider
    response = http.open_stream(path, **kwargs)
    try:
        body = _Body(response.iter_bytes(CHUNK_BYTES))
        items = ijson.items(body, ".".join([*items_path, "item"]), use_float=True)
        listed = _Count(items)
        yield from iter_offers(provider, listed, parse_one, skipped)
        if listed.count:
            return
        if not body.complete or len(body.head) >= CHUNK_BYTES:
            raise MalformedResponse(provider, f"answered GET {path} without its list of offers")
        page = whole(orjson.loads(body.head))
        skipped.extend(page.skipped)
        yield from page.offers
    except (ijson.JSONError, orjson.JSONDecodeError):
        raise MalformedResponse(
            provider, f"answered GET {path} with a body that is not JSON"
        ) from None
    except httpx.TimeoutException:
        raise ProviderUnavailable(provider, "timed out while sending its offers") from None
    except httpx.TransportError as exc:
        message = f"connection lost while sending its offers ({type(exc).__name__})"
        raise ProviderUnavailable(provider, message) from None
    finally:
        response.close()


class _Count:
    """The items, counted as they pass."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            self.count += 1
            yield item
