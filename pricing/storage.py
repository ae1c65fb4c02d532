"""How the catalog keeps a million offers small and out of the way of the queries.

- `Interner`: the offers' text of few distinct values (provider, GPU, region, slice, `ref`
  values such as the provider's own GPU and region spelling, the models a listing serves) is
  held once, not once per offer. A `ref` key whose values turn out to be many (a host id) stops
  being shared after `MEMO_LIMIT` values, so the memo never grows with the catalog.
- `same_offer`: whether a fetched offer is the one the catalog holds (all but `updated_at`), so a
  refresh can keep the held object instead of a second copy.
- `collector_paused`: Python's cyclic garbage collector walks every container object of the
  process on a full collection, holding the interpreter all the while (about a second for a
  million offers). A refresh pauses it while it builds, then moves everything alive into the
  permanent generation (`gc.freeze`), which collections skip: the catalog holds no reference
  cycles, and an offer or index dropped later is still freed by its reference count.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter
from typing import TypeVar, cast

from pricing.offer import Offer

MEMO_LIMIT = 4096

Value = TypeVar("Value", bound=Hashable)

_COMPARED = attrgetter(*(f.name for f in fields(Offer) if f.name != "updated_at"))


def same_offer(held: Offer, fetched: Offer) -> bool:
    """Whether `fetched` says exactly what `held` says, but for when it was fetched."""
    return bool(_COMPARED(held) == _COMPARED(fetched))


class _Memo:
    """One object per distinct value, until there turn out to be more than `MEMO_LIMIT`."""

    def __init__(self) -> None:
        self._values: dict[object, object] = {}
        self.open = True

    def share(self, value: Value) -> Value:
        if not self.open:
            return value
        found = self._values.get(value)
        if found is not None:
            return cast(Value, found)  # stored below as `value` itself
        if len(self._values) >= MEMO_LIMIT:
            self.open = False
            self._values.clear()
            return value
        self._values[value] = value
        return value


class Interner:
    """Shares the low-cardinality values of the offers of one refresh."""

    def __init__(self) -> None:
        self._refs: dict[str, _Memo] = {}
        self._models = _Memo()
        self._numbers = _Memo()

    def offer(self, offer: Offer) -> None:
        """Share the text the provider sent, and the interruption estimate pricing derived (few
        distinct numbers)."""
        offer.provider = sys.intern(offer.provider)
        offer.gpu = sys.intern(offer.gpu)
        offer.region = sys.intern(offer.region)
        if offer.slice is not None:
            offer.slice = sys.intern(offer.slice)
        if offer.models is not None:
            offer.models = self._models.share(tuple(sys.intern(m) for m in offer.models))
        ref = offer.ref
        for key, value in ref.items():
            memo = self._refs.get(key)
            if memo is None:
                memo = self._refs[key] = _Memo()
            if memo.open:  # interned too, so the next refresh's offers share it as well
                ref[key] = memo.share(sys.intern(value))
        if offer.interruption_probability is not None:
            offer.interruption_probability = self._numbers.share(offer.interruption_probability)


class _Collector:
    """The garbage collector's pause, shared by the refreshes running at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.was_enabled = False


_COLLECTOR = _Collector()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while the block builds; what it built is frozen out of later ones."""
    with _COLLECTOR.lock:
        _COLLECTOR.holders += 1
        if _COLLECTOR.holders == 1:
            _COLLECTOR.was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _COLLECTOR.lock:
            _COLLECTOR.holders -= 1
            if _COLLECTOR.holders == 0:
                gc.freeze()
                if _COLLECTOR.was_enabled:
                    gc.enable()
