"""`wait`: polling a rental until it reaches a status, the same for both clients.

`watch(...)` holds what one wait asks for; each client's `poll` asks for the rental, checks it
with `Watch.done` and sleeps `interval` between polls (blocking, or with `await`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from broker.client.errors import BrokerError
from broker.schemas.rentals import Rental

ENDED = frozenset({"terminated", "failed"})


class Watch:
    """What `wait` checks on each poll of a rental: whether it is in a wanted status, whether it
    ended otherwise (a `BrokerError`, `wait_ended`: it will never get there), whether time is up
    (`TimeoutError`)."""

    def __init__(
        self,
        rental_id: str,
        status: str | Collection[str],
        timeout: float,
        interval: float,
        on_poll: Callable[[Rental], None] | None,
    ) -> None:
        self.rental_id = rental_id
        self.interval = interval
        self.wanted = frozenset([status] if isinstance(status, str) else status)
        self.deadline = time.monotonic() + timeout
        self.on_poll = on_poll

    def done(self, rental: Rental) -> bool:
        if self.on_poll is not None:
            self.on_poll(rental)
        if rental.status in self.wanted:
            return True
        if rental.status in ENDED:
            reason = f" ({rental.reason})" if rental.reason else ""
            raise BrokerError(
                0,
                "wait_ended",
                f"rental {rental.id} is {rental.status}{reason}; it will never be "
                f"{' or '.join(sorted(self.wanted))}",
            )
        if time.monotonic() >= self.deadline:
            raise TimeoutError(f"rental {rental.id} is still {rental.status}")
        return False


def watch(
    rental_id: str,
    status: str | Collection[str] = "running",
    timeout: float = 600.0,
    interval: float = 2.0,
    on_poll: Callable[[Rental], None] | None = None,
) -> Watch:
    """Poll until the rental is in `status` (one or several) and return it, calling `on_poll`
    with each answer. A rental that ends otherwise raises `BrokerError` (`wait_ended`);
    `timeout` seconds raise `TimeoutError`."""
    return Watch(rental_id, status, timeout, interval, on_poll)
