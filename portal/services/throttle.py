"""Counting failures (wrong receipts, wrong passwords) to slow guessing down.

Keys are never raw client addresses: the web layer passes ``ClientKeyer.key(address)``, an HMAC
under a random key that lives only in memory (or in Redis with a TTL) and rotates daily, so a
counter cannot be turned back into an address even by someone holding the database and the
instance secrets (DESIGN.md invariant 1). Counters expire with their window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from portal import crypto

KEY_ROTATION_SECONDS = 24 * 3600


class Throttle(Protocol):
    def failures(self, key: str) -> int: ...

    def record_failure(self, key: str) -> int: ...

    def reset(self, key: str) -> None: ...

    def client_hmac_key(self) -> bytes: ...


class MemoryThrottle:
    """Per-process fixed-window counters. Enough for one app process; use Redis for several."""

    def __init__(self, window_seconds: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}
        self._hmac_key = crypto.random_bytes(32)
        self._hmac_born = clock()

    def _live(self, key: str, now: float) -> int:
        started, count = self._counts.get(key, (now, 0))
        if now - started >= self._window:
            self._counts.pop(key, None)
            return 0
        return count

    def failures(self, key: str) -> int:
        with self._lock:
            return self._live(key, self._clock())

    def record_failure(self, key: str) -> int:
        with self._lock:
            now = self._clock()
            count = self._live(key, now)
            started = self._counts.get(key, (now, 0))[0] if count else now
            self._counts[key] = (started, count + 1)
            if len(self._counts) > 100_000:  # bound memory under a flood of distinct keys
                self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self._window}
            return count + 1

    def reset(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def client_hmac_key(self) -> bytes:
        with self._lock:
            if self._clock() - self._hmac_born >= KEY_ROTATION_SECONDS:
                self._hmac_key = crypto.random_bytes(32)
                self._hmac_born = self._clock()
                self._counts.clear()
            return self._hmac_key


class RedisThrottle:
    """Counters shared by several app servers. Nothing is written to disk by our Redis setup;
    every key has a TTL."""

    def __init__(
        self, client: redis.Redis, window_seconds: int, prefix: str = "portal:throttle"
    ) -> None:
        self._redis = client
        self._window = window_seconds
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    def failures(self, key: str) -> int:
        value = self._redis.get(self._k(key))
        return int(value) if value is not None else 0

    def record_failure(self, key: str) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(self._k(key))
        pipe.expire(self._k(key), self._window, nx=True)
        count, _ = pipe.execute()
        return int(count)

    def reset(self, key: str) -> None:
        self._redis.delete(self._k(key))

    def client_hmac_key(self) -> bytes:
        name = f"{self._prefix}:client-key"
        self._redis.set(name, crypto.random_bytes(32), nx=True, ex=KEY_ROTATION_SECONDS)
        value = self._redis.get(name)
        if not isinstance(value, bytes):  # pragma: no cover - expired between the two calls
            return self.client_hmac_key()
        return value


def make_throttle(redis_url: str, window_seconds: int, prefix: str) -> Throttle:
    if redis_url:
        return RedisThrottle(redis.Redis.from_url(redis_url), window_seconds, prefix)
    return MemoryThrottle(window_seconds)


def client_key(throttle: Throttle, address: str) -> str:
    return "client:" + crypto.keyed_digest(throttle.client_hmac_key(), address)
