"""Process-wide bounds on work that holds much memory while it runs: a fixed number of slots, a
wait for a free one, and a typed error when none frees in time.

Two pools use it, each owned by its module: Argon2 computations (``portal.crypto``, 64 MiB each
by default) and the cleaning of a form's attachments (``portal.services.attachments.store``,
hundreds of MiB for a large picture). A pool is per process: gunicorn's workers each have their own,
and the threads of one worker share it.

A ``SlotPool`` is immutable; reconfiguring makes a new one (``resized``). Work already running
gives its slot back to the semaphore it took it from, so counts stay balanced.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: gunicorn's worker timeout: a request still running after this long has its worker restarted.
#: Here, not in ``portal.runtime.serving``, because the slot waits of one request must stay well
#: under it and ``portal doctor`` judges them against it without importing the server (which
#: builds the app).
WORKER_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class SlotPool:
    size: int
    wait_seconds: float
    slots: threading.BoundedSemaphore

    @classmethod
    def of(cls, size: int, wait_seconds: float) -> SlotPool:
        if size < 1 or wait_seconds < 0:
            raise ValueError("a pool needs at least one slot and a wait of 0 s or more")
        return cls(size, wait_seconds, threading.BoundedSemaphore(size))

    def resized(self, size: int, wait_seconds: float) -> SlotPool:
        """This pool with another size or wait. The semaphore is kept when the size does not
        change, so the slots taken now still count."""
        if (size, wait_seconds) == (self.size, self.wait_seconds):
            return self
        if size == self.size:
            return SlotPool(size, wait_seconds, self.slots)
        return SlotPool.of(size, wait_seconds)

    def acquire(self) -> bool:
        """Take a slot, waiting up to ``wait_seconds`` (not at all when 0); False if none
        freed in time."""
        if self.wait_seconds > 0:
            return self.slots.acquire(timeout=self.wait_seconds)
        return self.slots.acquire(blocking=False)

    def release(self) -> None:
        self.slots.release()

    @contextmanager
    def slot(self, busy: Callable[[], Exception]) -> Iterator[None]:
        """Hold a slot for the ``with`` block; raise ``busy()`` if none freed in time."""
        if not self.acquire():
            raise busy()
        try:
            yield
        finally:
            self.release()


class ProcessPool:
    """The pool of one kind of work in this process, as an object: the ``SlotPool`` of the
    moment behind a lock, which ``create_app`` may resize (``configure``). Work binds the pool
    of the moment when it starts, so a resize never unbalances a semaphore."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self._current = SlotPool.of(size, wait_seconds)
        self._lock = threading.Lock()

    def configure(self, size: int, wait_seconds: float) -> None:
        if size < 1 or wait_seconds < 0:
            raise ValueError("a pool needs at least one slot and a wait of 0 s or more")
        with self._lock:
            self._current = self._current.resized(size, wait_seconds)

    @property
    def size(self) -> int:
        return self._current.size

    @property
    def wait_seconds(self) -> float:
        return self._current.wait_seconds

    @contextmanager
    def slot(self, busy: Callable[[], Exception]) -> Iterator[None]:
        """Hold a slot of the pool of the moment (``SlotPool.slot``)."""
        with self._current.slot(busy):
            yield
