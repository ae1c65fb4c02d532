"""The in-memory catalog index: every search answered without scanning the catalog.

Built once per refresh, never per query. For each sort order the offers are laid out in that
order, and every filterable value (each GPU, provider, tier, region, count, memory threshold)
gets a bitset over those positions, held as a Python int. A query ANDs a handful of bitsets,
then walks the set bits from the cursor, so its cost follows the page size, not the catalog
size. Continuous limits (`max_price`, `max_interruption`) use precomputed quantile bitsets as a
superset and check the few extra candidates one by one; sorted by the same key, they are an
exact prefix.

Cursors are keyset cursors (sort key and offer id of the last row), so paging stays correct
across refreshes: an offer is never returned twice, and none is skipped unless it changed.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import numpy as np

from pricing import columns
from pricing.columns import Column
from pricing.offer import Offer, model_key
from pricing.places import region_needle
from pricing.query import OfferQuery

_WIDE = 10**12
_NO_VRAM_KEY = 2**62
_QUANTILES = 64
_CHUNK_BITS = 2048
_CHUNK_MASK = (1 << _CHUNK_BITS) - 1


def _primary_keys(
    price: np.ndarray, eff: np.ndarray, vram: np.ndarray, prob: np.ndarray
) -> dict[str, np.ndarray]:
    """Each sort order's primary key as one int64 per offer (ties are broken by offer id)."""
    per_vram = np.where(vram > 0, price * 1000 // np.maximum(vram, 1), _NO_VRAM_KEY)
    return {
        "price": price,
        "-price": -price,
        "effective_price": eff,
        "vram": vram * _WIDE + price,
        "-vram": -vram * _WIDE + price,
        "interruption": np.rint(prob * 1e6).astype(np.int64) * _WIDE + eff,
        "price_per_vram": per_vram,
    }


def _bitset(flags: np.ndarray) -> int:
    """A boolean array (in order position) as an int whose bit i is flags[i]."""
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


def _cut_sets(ordered: np.ndarray, cuts: np.ndarray) -> list[int]:
    """One bitset per cut: the offers (in this order) whose value is at most the cut."""
    return [_bitset(ordered <= cut) for cut in cuts]


def _iter_bits(mask: int) -> Iterator[int]:
    """Positions of set bits, ascending, touching the big int once per chunk, not per bit."""
    base = 0
    while mask:
        skip = (mask & -mask).bit_length() - 1
        mask >>= skip
        base += skip
        chunk = mask & _CHUNK_MASK
        while chunk:
            low = chunk & -chunk
            yield base + low.bit_length() - 1
            chunk ^= low
        mask >>= _CHUNK_BITS
        base += _CHUNK_BITS


class InvalidCursor(ValueError):
    """A cursor that this index did not issue, or one from another sort order."""


def encode_cursor(sort: str, key: int, offer_id: str) -> str:
    raw = f"{sort}|{key}|{offer_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        cursor_sort, key, offer_id = raw.split("|", 2)
        parsed = int(key)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("cursor is not one this API returned") from exc
    if cursor_sort != sort:
        raise InvalidCursor(f"cursor belongs to sort={cursor_sort}, not sort={sort}")
    if not -(2**63) < parsed < 2**63:  # sort keys are int64s; numpy cannot compare larger ones
        raise InvalidCursor("cursor is not one this API returned")
    return parsed, offer_id


class _Order:
    """The catalog laid out in one sort order, with a bitset per filter value."""

    def __init__(
        self,
        offers: Sequence[Offer],
        perm: np.ndarray,
        keys: np.ndarray,
        cols: dict[str, Column],
        codes: np.ndarray,
        steps: dict[str, tuple[np.ndarray, list[int]]],
        cuts: dict[str, tuple[np.ndarray, np.ndarray]],
    ) -> None:
        # Positions into the catalog's one list of offers, not a list of offers per order.
        self.offers = offers
        self.positions = perm.astype(np.int32).data
        self.keys = keys[perm]
        self.all = (1 << len(perm)) - 1
        # One row of `codes` per column: one gather lays them all out in this order.
        ordered = np.take(codes, perm, axis=1)
        self.sets: dict[str, list[int]] = {
            name: [_bitset(ordered[row] == code) for code in range(len(col.values))]
            for row, (name, col) in enumerate(cols.items())
        }
        self.at_least: dict[str, list[int]] = {}
        for name, (values, thresholds) in steps.items():
            ordered_values = values[perm]
            self.at_least[name] = [_bitset(ordered_values >= step) for step in thresholds]
        self.at_most = {
            name: _cut_sets(values[perm], cut_values) for name, (values, cut_values) in cuts.items()
        }

    def start_after(self, key: int, offer_id: str) -> int:
        """Position of the first offer after (key, offer_id) in this order."""
        pos = int(np.searchsorted(self.keys, key, side="left"))
        while pos < len(self.keys) and self.keys[pos] == key and self.at(pos).id <= offer_id:
            pos += 1
        return pos

    def at(self, position: int) -> Offer:
        """The offer at `position` in this order."""
        return self.offers[self.positions[position]]


@dataclass(frozen=True)
class Page:
    offers: list[Offer]
    next_cursor: str | None


class CatalogIndex:
    """An immutable, searchable snapshot of every provider's offers."""

    def __init__(self, offers: Sequence[Offer], gpu_key: Callable[[str], str] = str.lower) -> None:
        self.offers = offers = list(offers)
        ids = [o.id for o in offers]
        self.by_id: dict[str, Offer] = {}
        for part in columns.slices(len(ids)):
            self.by_id.update(zip(ids[part], offers[part], strict=True))
        self._gpu_key = gpu_key
        n = len(offers)
        cols = {
            "gpu": columns.column([o.gpu for o in offers]),
            "provider": columns.column([o.provider for o in offers]),
            "tier": columns.column([o.tier for o in offers], key=_text),
            "instance_type": columns.column([o.instance_type for o in offers], key=_text),
            "available": columns.column([o.available for o in offers]),
            "region": columns.column([(o.region, o.country, o.continent) for o in offers]),
            "slice": columns.column([o.slice for o in offers], key=_is_given),
            "models": columns.column([o.models for o in offers]),
            "gpu_count": columns.column([o.gpu_count for o in offers]),
        }
        self._cols = {name: col.values for name, col in cols.items()}
        codes = np.stack([col.codes for col in cols.values()])
        self._gpu_codes_by_key: dict[str, list[int]] = {}
        for name, code in cols["gpu"].values.items():
            self._gpu_codes_by_key.setdefault(gpu_key(str(name)), []).append(code)
        vram = np.fromiter((o.vram_gb for o in offers), np.int64, n)
        counts = np.fromiter((o.gpu_count for o in offers), np.int64, n)
        self._steps = {
            "vram": [int(v) for v in np.unique(vram)],
            "gpu_count": [int(c) for c in np.unique(counts)],
        }
        prices = np.fromiter((o.price_per_gpu_hour for o in offers), np.int64, n)
        effective = np.fromiter((o.effective_price_per_gpu_hour for o in offers), np.int64, n)
        probs = np.fromiter((o.interruption_probability or 0.0 for o in offers), np.float64, n)
        self._cuts = {"price": _quantile_cuts(prices), "interruption": _quantile_cuts(probs)}
        keys = _primary_keys(prices, effective, vram, probs)
        id_order = np.argsort(_id_bytes(ids), kind="stable")
        id_rank = np.empty(n, np.int64)
        id_rank[id_order] = np.arange(n)
        steps = {
            "vram": (vram, self._steps["vram"]),
            "gpu_count": (counts, self._steps["gpu_count"]),
        }
        cuts = {
            "price": (prices, self._cuts["price"]),
            "interruption": (probs, self._cuts["interruption"]),
        }
        self._orders = {
            sort: _Order(offers, _sorted_by(key, id_order, id_rank), key, cols, codes, steps, cuts)
            for sort, key in keys.items()
        }

    def __len__(self) -> int:
        return len(self.offers)

    def get(self, offer_id: str) -> Offer | None:
        return self.by_id.get(offer_id)

    def gpu_names(self) -> list[str]:
        return [str(name) for name in self._cols["gpu"]]

    def has_gpu_key(self, key: str) -> bool:
        return key in self._gpu_codes_by_key

    def search(self, query: OfferQuery) -> Page:
        """The page of offers matching `query`, in its sort order, after its cursor."""
        order = self._orders[query.sort]
        mask, checks = self._mask(order, query)
        start = 0
        if query.cursor:
            start = order.start_after(*decode_cursor(query.cursor, query.sort))
        found: list[Offer] = []
        last_position = start
        for bit in _iter_bits(mask >> start):
            position = start + bit
            offer = order.at(position)
            if not all(check(offer) for check in checks):
                continue
            if len(found) == query.limit:
                key = int(order.keys[last_position])
                return Page(found, encode_cursor(query.sort, key, found[-1].id))
            found.append(offer)
            last_position = position
        return Page(found, None)

    def _mask(self, order: _Order, q: OfferQuery) -> tuple[int, list[Callable[[Offer], bool]]]:
        mask = order.all
        checks: list[Callable[[Offer], bool]] = []

        def any_of(column: str, values: Sequence[object]) -> int:
            codes = self._cols[column]
            bits = 0
            for value in values:
                code = codes.get(value)
                if code is not None:
                    bits |= order.sets[column][code]
            return bits

        if q.gpus:
            codes = {
                c for key in q.gpus for c in self._gpu_codes_by_key.get(self._gpu_key(key), ())
            }
            bits = 0
            for code in codes:
                bits |= order.sets["gpu"][code]
            mask &= bits
        if q.providers:
            mask &= any_of("provider", q.providers)
        if q.tier is not None:
            mask &= any_of("tier", [q.tier.value])
        if q.instance_type is not None:
            mask &= any_of("instance_type", [q.instance_type.value])
        if q.available is not None:
            mask &= any_of("available", [q.available])
        if q.gpu_count is not None:
            mask &= any_of("gpu_count", [q.gpu_count])
        if q.slices is not None:
            mask &= any_of("slice", [q.slices])
        if q.region:
            needle = region_needle(q.region)
            mask &= any_of(
                "region", [p for p in self._cols["region"] if needle.matches(*_place(p))]
            )
        if q.model:
            wanted = model_key(q.model)
            mask &= any_of("models", [m for m in self._cols["models"] if _serves(m, wanted)])
        if q.min_vram is not None:
            mask &= _at_least(order.at_least["vram"], self._steps["vram"], q.min_vram)
        if q.min_gpu_count is not None:
            mask &= _at_least(
                order.at_least["gpu_count"], self._steps["gpu_count"], q.min_gpu_count
            )
        if q.max_price is not None:
            limit = q.max_price
            if q.sort == "price":
                mask &= (1 << int(np.searchsorted(order.keys, limit, side="right"))) - 1
            else:
                mask &= _at_most(order.at_most["price"], self._cuts["price"], limit)
                checks.append(lambda o: o.price_per_gpu_hour <= limit)
        if q.max_interruption is not None:
            ceiling = q.max_interruption
            mask &= _at_most(order.at_most["interruption"], self._cuts["interruption"], ceiling)
            checks.append(lambda o: (o.interruption_probability or 0.0) <= ceiling)
        return mask, checks


def _place(value: object) -> tuple[str, str | None, str | None]:
    """A key of the region column: (region text, country, continent)."""
    region, country, continent = cast(tuple[str, str | None, str | None], value)
    return region, country, continent


def _serves(value: object, wanted: str) -> bool:
    """Whether a key of the models column (a tuple of names, or None: any) serves `wanted`."""
    models = cast(tuple[str, ...] | None, value)
    return models is None or any(model_key(name) == wanted for name in models)


def _text(member: object) -> str:
    """An enum member's value: the text a query names it by."""
    return str(cast(StrEnum, member).value)


def _is_given(value: object) -> bool:
    return value is not None


def _id_bytes(ids: list[str]) -> np.ndarray:
    """The offer ids as fixed-width bytes, so numpy sorts them with the interpreter released (a
    sort of str objects would hold it for the whole sort). UTF-8 sorts bytewise in code point
    order, as str does."""
    encoded = [i.encode() for i in ids]
    width = max(map(len, encoded), default=1)
    return columns.array(encoded, np.dtype(f"S{max(width, 1)}"))


def _sorted_by(key: np.ndarray, id_order: np.ndarray, id_rank: np.ndarray) -> np.ndarray:
    """Positions in order of `key`, ties in order of offer id.

    Where the key's range times the catalog's size fits in an int64, key and id rank are sorted
    as one number (a plain sort of distinct values, the fastest numpy has); otherwise the id
    order is sorted stably by key.
    """
    n = len(key)
    if n == 0:
        return np.empty(0, np.int64)
    low = int(key.min())
    if (int(key.max()) - low + 1) * n < 2**62:
        combined = (key - low) * n + id_rank
        combined.sort()
        return np.asarray(id_order[combined % n])
    return np.asarray(id_order[np.argsort(key[id_order], kind="stable")])


def _quantile_cuts(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.array([], dtype=values.dtype)
    return np.unique(np.quantile(values, np.linspace(0, 1, _QUANTILES + 1), method="higher"))


def _at_least(bitsets: list[int], steps: list[int], minimum: int) -> int:
    """Offers whose value is >= minimum: the bitset of the smallest distinct value >= minimum."""
    i = bisect_left(steps, minimum)
    return bitsets[i] if i < len(bitsets) else 0


def _at_most(bitsets: list[int], cuts: np.ndarray, maximum: float) -> int:
    """A superset of the offers whose value is <= maximum (the smallest cut >= maximum)."""
    i = int(np.searchsorted(cuts, maximum, side="left"))
    return bitsets[i] if i < len(bitsets) else -1
