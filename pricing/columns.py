"""Columns of the offers' values, coded and converted a slice at a time.

The index and the GPU overview read each attribute of the offers once, with a comprehension
(the interpreter's fastest way to read a slot of a million objects), and then do the rest in C:
coding values (`column`) and converting lists to numpy arrays (`array`). C code never hands the
interpreter over to another thread, so it runs on slices of `SLICE` values, a few milliseconds
each: a refresh building an index never holds up a query for longer than that.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SLICE = 65536


def slices(size: int) -> Iterator[slice]:
    """Consecutive slices of at most `SLICE` positions covering `range(size)`."""
    for start in range(0, size, SLICE):
        yield slice(start, start + SLICE)


def array(items: Sequence[Any], dtype: type | np.dtype[Any]) -> np.ndarray:
    """`items` as a numpy array of `dtype` (None reads as NaN in a float array)."""
    made = np.empty(len(items), dtype)
    for part in slices(len(items)):
        made[part] = items[part]
    return made


@dataclass
class Column:
    """A filterable attribute: one code per offer, and the code of each distinct value."""

    codes: np.ndarray
    values: dict[Any, int]


def column(items: Sequence[Hashable], key: Callable[[Any], Hashable] | None = None) -> Column:
    """Codes for `items` in the order their values are first seen.

    `key` maps each distinct value to the one the column is searched by (an enum member to its
    text, a slice name to "is a slice"); values with the same key share a code.
    """
    seen: dict[Hashable, int] = {}
    codes = np.empty(len(items), np.int32)
    for part in slices(len(items)):
        chunk = items[part]
        for value in dict.fromkeys(chunk):
            seen.setdefault(value, len(seen))
        codes[part] = np.fromiter(map(seen.__getitem__, chunk), np.int32, len(chunk))
    if key is None:
        return Column(codes, seen)
    keyed: dict[Hashable, int] = {}
    recode = np.array([keyed.setdefault(key(value), len(keyed)) for value in seen], np.int32)
    return Column(recode[codes] if len(seen) else codes, keyed)
