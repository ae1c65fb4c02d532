"""Tolerant readers for provider JSON, shared by every parser.

Providers add fields, omit optional ones, send numbers as strings and strings as numbers. Each
reader accepts what a reasonable provider might send and raises `MalformedItem` for anything
else, so `iter_offers` can skip that one item, log why, and keep the rest of the catalog.

`build_offer` makes the one `Offer` every parser builds from what it read, with the defaults most
providers share, and labels a part of a card (memory below the card's) as a slice.
`parse_page` reads a whole catalog response around them, and `page_reader` makes a provider's
catalog reader from its per-item parser where every item becomes offers fetched at one moment.
Other responses (a rental, an instance, a listing of them) fail as a whole: `read_response`
turns a malformed item in one into a `MalformedResponse` naming what it is, and `read_object`
first checks that the response is one JSON object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pricing.gpus import GpuName, known_gpus
from pricing.money import InvalidAmount, to_decimal, to_micros
from pricing.offer import NO_SOURCE, PROVIDER_SOURCE, InstanceType, Offer, Tier
from providers.base import MalformedResponse, OfferPage

log = logging.getLogger("gpubroker.providers")
Value = TypeVar("Value")
# What reads one catalog item: the offers it describes.
ParseOne = Callable[[Any], Iterable[Offer]]
# Integers a float holds exactly.
_EXACT_INTEGERS = 2**53


class MalformedItem(ValueError):
    """One catalog item cannot be read; the rest of the catalog still can."""


def _is_object(value: Any) -> bool:
    # JSON objects decode to dict; the exact type check spares the slow ABC check per field.
    return type(value) is dict or isinstance(value, Mapping)


def field(item: Mapping[str, Any], *path: str) -> Any:
    """The value at `path` in nested objects; MalformedItem when a step is missing."""
    value: Any = item
    for key in path:
        # `_is_object` inlined: this runs for every field of every offer of a catalog.
        if (type(value) is not dict and not isinstance(value, Mapping)) or key not in value:
            raise MalformedItem(f"missing field {'.'.join(path)!r}")
        value = value[key]
    return value


def optional(item: Mapping[str, Any], *path: str) -> Any:
    """The value at `path`, or None when any step is missing or null."""
    value: Any = item
    for key in path:
        if type(value) is not dict and not isinstance(value, Mapping):
            return None
        value = value.get(key)
        if value is None:
            return None
    return value


def text_field(item: Mapping[str, Any], name: str) -> str:
    """`text(field(item, name), name)`, one call for the usual case of a plain string."""
    value = item.get(name)
    if type(value) is str and (stripped := value.strip()):
        return stripped
    return text(field(item, name), name)


def text(value: Any, name: str) -> str:
    if isinstance(value, str):
        if stripped := value.strip():
            return stripped
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedItem(f"{name} is not a non-empty string: {value!r}")


def integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise MalformedItem(f"{name} is not an integer: {value!r}")
    try:
        number = to_decimal(value)
    except InvalidAmount as exc:
        raise MalformedItem(f"{name} is not an integer: {value!r}") from exc
    if number != number.to_integral_value():
        raise MalformedItem(f"{name} is not an integer: {value!r}")
    return int(number)


def number(value: Any, name: str) -> float:
    # A JSON float or a modest integer is already what reading it as a decimal would give.
    if type(value) is float and math.isfinite(value):
        return value
    if type(value) is int and -_EXACT_INTEGERS <= value <= _EXACT_INTEGERS:
        return float(value)
    if isinstance(value, bool):
        raise MalformedItem(f"{name} is not a number: {value!r}")
    try:
        return float(to_decimal(value))
    except InvalidAmount as exc:
        raise MalformedItem(f"{name} is not a number: {value!r}") from exc


def boolean(value: Any, name: str, *, default: bool | None = None) -> bool:
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise MalformedItem(f"{name} is not a boolean: {value!r}")


def price(value: Any, name: str) -> int:
    """A positive price in dollars (number or string) as micro-dollars."""
    try:
        micros = to_micros(value)
    except InvalidAmount as exc:
        raise MalformedItem(f"{name} is not a price: {value!r}") from exc
    if micros <= 0:
        raise MalformedItem(f"{name} is not a positive price: {value!r}")
    return micros


def optional_number(item: Mapping[str, Any], *path: str) -> float | None:
    """The number at `path`, or None when absent: a hint such as a GPU's memory."""
    value = optional(item, *path)
    return None if value is None else number(value, ".".join(path))


def probability(value: Any, name: str) -> float:
    p = number(value, name)
    if not 0.0 <= p <= 1.0:
        raise MalformedItem(f"{name} is not a probability: {value!r}")
    return p


def status_in(
    item: Mapping[str, Any],
    table: Mapping[str, Value],
    documented: str,
    *,
    case: Callable[[str], str] = str.lower,
) -> tuple[str, Value]:
    """The item's `status` as sent (in `case`) and as read through `table`; MalformedItem when it
    is not `documented` (e.g. "one AIVory documents")."""
    raw = case(text(field(item, "status"), "status"))
    status = table.get(raw)
    if status is None:
        raise MalformedItem(f"status is not {documented}: {raw!r}")
    return raw, status


def items_of(payload: Any, *path: str) -> list[Any]:
    """The list at `path` (or the payload itself): the one shape error that fails a whole page."""
    value = field(payload, *path) if path else payload
    if not isinstance(value, list):
        raise MalformedItem(f"expected a list at {'.'.join(path) or 'top level'}")
    return value


# The least memory each known card ships with: an offer with less sells part of a card.
_CARD_MEMORY = {model.name: min(model.vram_sizes) for model in known_gpus()}


def build_offer(
    provider: str,
    id_: str,
    gpu: GpuName,
    price_per_gpu_hour: int,
    region: str,
    fetched_at: datetime,
    *,
    ref: dict[str, str],
    gpu_count: int = 1,
    tier: Tier = Tier.ON_DEMAND,
    instance_type: InstanceType = InstanceType.CONTAINER,
    available: bool = True,
    available_count: int | None = None,
    vram_gb: int | None = None,
    interruption: float | None = None,
    slice_: str | None = None,
    gpu_fraction: float | None = None,
    models: Sequence[str] | None = None,
) -> Offer:
    """One offer as a parser read it. `vram_gb` defaults to the GPU's memory; `slice_` names
    what part of a card it sells ("partial-20gb" where only the memory says so), with its
    `gpu_fraction` (by default the slice's share of the card's memory)."""
    memory = gpu.vram_gb if vram_gb is None else vram_gb
    card = _CARD_MEMORY.get(gpu.name) if gpu.known else None
    if slice_ is None and card is not None and 0 < memory < card:
        slice_ = f"partial-{memory}gb"
    if gpu_fraction is None:
        gpu_fraction = round(min(memory / card, 1.0), 4) if slice_ and card else 1.0
    # Positional, in the order of Offer's fields: this runs once per listed offer, and a call
    # with keywords costs about twice as much (they travel as a dict to the dataclass's init).
    return Offer(
        id_,
        provider,
        gpu.name,
        gpu_count,
        memory,
        price_per_gpu_hour,
        tier,
        region,
        instance_type,
        available,
        available_count,
        fetched_at,
        interruption,
        NO_SOURCE if interruption is None else PROVIDER_SOURCE,
        gpu.known,
        ref,
        slice_,
        gpu_fraction,
        None if models is None else tuple(models),
    )


def iter_offers(
    provider: str,
    items: Iterable[Any],
    parse_one: ParseOne,
    skipped: list[str],
    *,
    where: str = "",
) -> Iterator[Offer]:
    """Apply `parse_one` to each item, one at a time (an answer can be read as it arrives); a
    malformed item is logged and noted in `skipped`, after `where` (the part of a nested listing
    it sat in) when given."""
    for position, item in enumerate(items):
        if type(item) is not dict and not _is_object(item):
            reason = f"item {position} is not an object"
        else:
            try:
                parsed = list(parse_one(item))
            except MalformedItem as exc:
                reason = f"item {position}: {exc}"
            else:
                yield from parsed
                continue
        if where:
            reason = f"{where}: {reason}"
        skipped.append(reason)
        log.warning("%s: skipped a catalog item (%s)", provider, reason)


def parse_page(
    provider: str,
    payload: Any,
    path: tuple[str, ...],
    parse_one: ParseOne,
    what: str,
) -> OfferPage:
    """A whole catalog response: a wrong top-level shape fails it, a bad item is skipped."""
    try:
        items = items_of(payload, *path)
    except MalformedItem as exc:
        raise MalformedResponse(provider, f"{what} is not the documented shape: {exc}") from None
    page = OfferPage()
    page.offers = list(iter_offers(provider, items, parse_one, page.skipped))
    return page


def page_reader(
    provider: str,
    path: tuple[str, ...],
    parse_one: Callable[[Any, datetime], Iterable[Offer]],
    what: str,
) -> Callable[[Any, datetime], OfferPage]:
    """`parse_page` for a catalog whose items each read as offers fetched at one moment."""

    def read(payload: Any, fetched_at: datetime) -> OfferPage:
        return parse_page(provider, payload, path, lambda item: parse_one(item, fetched_at), what)

    return read


def read_response(provider: str, what: str, read: Callable[[Any], Value], payload: Any) -> Value:
    """`read(payload)`; a malformed item in it fails the whole response, naming `what`."""
    try:
        return read(payload)
    except MalformedItem as exc:
        raise MalformedResponse(provider, f"{what} is not the documented shape: {exc}") from None


def read_object(
    provider: str, what: str, read: Callable[[dict[str, Any]], Value], payload: Any
) -> Value:
    """`read_response` for a response that is one JSON object."""
    if not isinstance(payload, dict):
        raise MalformedResponse(provider, f"{what} is not a JSON object")
    return read_response(provider, what, read, payload)


def timestamp(value: Any, name: str) -> datetime | None:
    """An optional RFC 3339 time (`Z` or an offset); MalformedItem when garbled or zoneless."""
    if value is None:
        return None
    raw = text(value, name)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedItem(f"{name} is not an RFC 3339 time: {raw!r}") from None
    if moment.tzinfo is None:
        raise MalformedItem(f"{name} has no time zone: {raw!r}")
    return moment


def lenient_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 time, or None when absent or unreadable: for fields that only refine."""
    try:
        return timestamp(value, "time") if isinstance(value, str) else None
    except MalformedItem:
        return None
