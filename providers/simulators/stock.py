"""Finite capacity, as the simulated catalogs that count it in free slots show it, and the
starting catalogs' tables, kept as data beside each simulator.

A listed offer or plan holds only a few instances at a time. The catalogs that keep that count as
`free` (how many more it can hold) derive from `Stocked`, which lists the item as available while
any slot remains; the others count capacity under their own documented field and keep their own
rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from importlib import resources
from typing import Any


class Stocked:
    """A catalog item with `free` slots left; available while one remains."""

    free: int

    @property
    def available(self) -> bool:
        return self.free > 0


def seed_table(package: str | None, name: str) -> Any:
    """Table `name` of `package`'s `seed.json` (its starting catalog as data), lists as tuples.

    Each `seed.json` says what its tables' columns are under `"columns"`.
    """
    assert package, "a simulator's seed module names its package"
    text = resources.files(package).joinpath("seed.json").read_text(encoding="utf-8")
    return _frozen(json.loads(text)[name])


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def camel(name: str) -> str:
    """`gpu_model` -> `gpuModel`, as the camel-case APIs spell their fields."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def wire(
    item: Any, *, key: Callable[[str], str] = str, leave: Iterable[str] = (), **extra: object
) -> dict[str, object]:
    """A catalog item as its API lists it: each dataclass field under `key(name)` (copied, so a
    caller cannot change the item), except those in `leave`, then `extra` as given."""
    left = set(leave)
    body: dict[str, object] = {
        key(name): value for name, value in asdict(item).items() if name not in left
    }
    body.update(extra)
    return body
