"""Finite capacity, as the simulated catalogs that count it in free slots show it.

A listed offer or plan holds only a few instances at a time. The catalogs that keep that count as
`free` (how many more it can hold) derive from `Stocked`, which lists the item as available while
any slot remains; the others count capacity under their own documented field and keep their own
rule.
"""

from __future__ import annotations


class Stocked:
    """A catalog item with `free` slots left; available while one remains."""

    free: int

    @property
    def available(self) -> bool:
        return self.free > 0
