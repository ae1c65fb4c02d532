"""The allocation lock: "read which GPUs are held, then create the container" as one step.

Allocation is derived from container labels, so two rents that both read the labels before
either container exists would both see a GPU free. Holding this lock from the read to the
create closes that window:

- within one broker process, a `threading.Lock` orders the request threads;
- across broker processes on one host (several replicas sharing one Docker engine), an
  exclusive `fcntl.flock` on a lock file does the same. The kernel releases it when its holder
  dies, so a crashed broker never leaves the host locked.

Waiting is bounded: a lock held for longer than `timeout_seconds` (a wedged Docker call) makes
the caller give up with `LockTimeout` instead of hanging a rent request.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_LOCK_FILE = Path(tempfile.gettempdir()) / "gpubroker-selfhosted.lock"
_POLL_SECONDS = 0.02


class LockTimeout(Exception):
    """The allocation lock stayed held by someone else for the whole wait."""


class HostLock:
    """A process-wide lock plus a host-wide `flock` on `path`."""

    def __init__(self, path: Path = DEFAULT_LOCK_FILE, timeout_seconds: float = 30.0) -> None:
        self.path = path
        self.timeout_seconds = timeout_seconds
        self._thread_lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout_seconds
        if not self._thread_lock.acquire(timeout=self.timeout_seconds):
            raise LockTimeout(
                f"another rent in this process held the lock for {self.timeout_seconds}s"
            )
        try:
            with self._file_lock(deadline):
                yield
        finally:
            self._thread_lock.release()

    @contextmanager
    def _file_lock(self, deadline: float) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"another broker process held {self.path} for {self.timeout_seconds}s"
                        ) from None
                    time.sleep(_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)
