"""Counting failures (wrong receipts, wrong passwords) to slow guessing down.

Keys are never raw client addresses: the web layer passes ``ClientKeyer.key(address)``, an HMAC
under a random key that lives only in memory (or in Redis with a TTL) and rotates daily, so a
counter cannot be turned back into an address even by someone holding the database and the
instance secrets (DESIGN.md invariant 1). Counters expire with their window.
"""

from __future__ import annotations

import fcntl
import logging
import math
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from portal import crypto

KEY_ROTATION_SECONDS = 24 * 3600


class Throttle(Protocol):
    def failures(self, key: str) -> int: ...

    def record_failure(self, key: str) -> int: ...

    def reset(self, key: str) -> None: ...

    def retry_after(self, key: str) -> int:
        """Seconds until ``key``'s window ends (at least 1)."""
        ...

    def client_hmac_key(self) -> bytes: ...


class MemoryThrottle:
    """Per-process fixed-window counters. Enough for one app process; use Redis for several."""

    def __init__(
        self,
        window_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        key_rotation_seconds: int = KEY_ROTATION_SECONDS,
    ) -> None:
        self._window = window_seconds
        self._rotation = key_rotation_seconds
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

    def retry_after(self, key: str) -> int:
        with self._lock:
            now = self._clock()
            started = self._counts.get(key, (now, 0))[0]
            return max(1, math.ceil(self._window - (now - started)))

    def client_hmac_key(self) -> bytes:
        with self._lock:
            if self._clock() - self._hmac_born >= self._rotation:
                # Counters keyed under the old key could never be reached again: drop them.
                self._hmac_key = crypto.random_bytes(32)
                self._hmac_born = self._clock()
                self._counts.clear()
            return self._hmac_key


class SharedRegion:
    """A fixed table of counters in anonymous shared memory (``memfd_create`` + ``mmap``),
    created by gunicorn's master before it forks its workers, so that every worker of one
    server counts in the same table (issue 13: with per-process counters two workers let
    9 submissions through where the setting said 5). Nothing touches a disk: the memory has
    no path, it goes when the last process of the server exits, and it holds only keyed
    digests and monotonic-clock window starts (DESIGN.md invariants 1 and 3).

    Layout: a header (the client HMAC key and its birth time), then ``SLOTS`` slots of
    (16-byte digest of the counter's key, window start, count). Workers exclude each other with
    a POSIX record lock on the memory's descriptor (the kernel drops it if a worker dies
    holding it, so a killed worker cannot wedge the others) and their own threads with a lock.
    """

    SLOTS = 16_384
    #: Slots looked at from a key's home slot; a key that finds all of them live evicts the
    #: oldest (a flood of that many distinct clients in one window: see docs/limits.md).
    PROBES = 64
    _HEADER = struct.Struct("<32sd")
    _SLOT = struct.Struct("<16sdq")

    def __init__(self, name: str) -> None:
        self._size = self._HEADER.size + self.SLOTS * self._SLOT.size
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.ftruncate(self._fd, self._size)
        self._map = mmap.mmap(self._fd, self._size, mmap.MAP_SHARED)
        # The slot digests are keyed too, so the table reads as noise without this process.
        self._salt = crypto.random_bytes(32)
        self._threads: dict[int, threading.Lock] = {}

    def __enter__(self) -> SharedRegion:
        lock = self._threads.setdefault(os.getpid(), threading.Lock())
        lock.acquire()
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_UN)
        self._threads[os.getpid()].release()

    def header(self) -> tuple[bytes, float]:
        key, born = self._HEADER.unpack_from(self._map, 0)
        return key, born

    def set_header(self, key: bytes, born: float) -> None:
        self._HEADER.pack_into(self._map, 0, key, born)

    def clear(self) -> None:
        self._map[self._HEADER.size :] = bytes(self._size - self._HEADER.size)

    def _offset(self, index: int) -> int:
        return self._HEADER.size + index * self._SLOT.size

    def find(self, key: str, window: float, now: float) -> tuple[int, int, float]:
        """(slot, live count, window start) for ``key``: its own slot, else a free or expired
        one (count 0), else the oldest live one of its probes (count 0: evicted)."""
        digest = bytes.fromhex(crypto.keyed_digest(self._salt, key)[:32])
        home = int.from_bytes(digest[:4], "big") % self.SLOTS
        spare = -1
        oldest, oldest_start = home, math.inf
        for step in range(self.PROBES):
            index = (home + step) % self.SLOTS
            held, started, count = self._SLOT.unpack_from(self._map, self._offset(index))
            live = count > 0 and now - started < window
            if held == digest:
                return (index, count, started) if live else (index, 0, now)
            if not live and spare < 0:
                spare = index
            if live and started < oldest_start:
                oldest, oldest_start = index, started
        return (spare if spare >= 0 else oldest), 0, now

    def write(self, index: int, key: str, started: float, count: int) -> None:
        digest = bytes.fromhex(crypto.keyed_digest(self._salt, key)[:32]) if count else bytes(16)
        self._SLOT.pack_into(self._map, self._offset(index), digest, started, count)


class SharedThrottle:
    """Fixed-window counters that every worker of one server shares (``SharedRegion``); the
    default under ``portal serve`` without Redis. Several app servers still need Redis."""

    def __init__(
        self,
        region: SharedRegion,
        window_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        key_rotation_seconds: int = KEY_ROTATION_SECONDS,
    ) -> None:
        # time.monotonic is CLOCK_MONOTONIC on Linux: one clock for every process of the host.
        self._region = region
        self._window = window_seconds
        self._rotation = key_rotation_seconds
        self._clock = clock

    def failures(self, key: str) -> int:
        with self._region as table:
            return table.find(key, self._window, self._clock())[1]

    def record_failure(self, key: str) -> int:
        with self._region as table:
            now = self._clock()
            index, count, started = table.find(key, self._window, now)
            table.write(index, key, started if count else now, count + 1)
            return count + 1

    def reset(self, key: str) -> None:
        with self._region as table:
            index, count, _ = table.find(key, self._window, self._clock())
            if count:
                table.write(index, key, 0.0, 0)

    def retry_after(self, key: str) -> int:
        with self._region as table:
            now = self._clock()
            _, count, started = table.find(key, self._window, now)
            return max(1, math.ceil(self._window - (now - started))) if count else self._window

    def client_hmac_key(self) -> bytes:
        with self._region as table:
            key, born = table.header()
            now = self._clock()
            if key == bytes(32) or now - born >= self._rotation:
                # Counters keyed under the old key could never be reached again: drop them.
                key = crypto.random_bytes(32)
                table.clear()
                table.set_header(key, now)
            return key


#: The counters ``create_app`` makes, by prefix: ``shared_regions`` makes one region for each.
THROTTLE_PREFIXES = (
    "portal:followup",
    "portal:login",
    "portal:api",
    "portal:submit-all",
    "portal:submit",
)


def shared_regions() -> dict[str, SharedRegion] | None:
    """One shared region per counter, for a server whose workers are forked from this
    process; None where the system has no anonymous shared memory (not Linux): the counters
    are then per process, which ``portal serve`` and ``portal doctor`` say."""
    if not hasattr(os, "memfd_create"):  # pragma: no cover - Linux has it
        return None
    return {prefix: SharedRegion(prefix.replace(":", "-")) for prefix in THROTTLE_PREFIXES}


class RedisThrottle:
    """Counters shared by several app servers. Nothing is written to disk by our Redis setup;
    every key has a TTL."""

    def __init__(
        self,
        client: redis.Redis,
        window_seconds: int,
        prefix: str = "portal:throttle",
        key_rotation_seconds: int = KEY_ROTATION_SECONDS,
    ) -> None:
        self._redis = client
        self._window = window_seconds
        self._prefix = prefix
        self._rotation = key_rotation_seconds

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

    def retry_after(self, key: str) -> int:
        ttl = self._redis.ttl(self._k(key))
        return ttl if isinstance(ttl, int) and ttl > 0 else 1

    def client_hmac_key(self) -> bytes:
        # Redis deletes the key when its TTL ends: counters written under it can then no longer
        # be matched to an address, nor to the counters of the next key.
        name = f"{self._prefix}:client-key"
        self._redis.set(name, crypto.random_bytes(32), nx=True, ex=self._rotation)
        value = self._redis.get(name)
        if not isinstance(value, bytes):  # pragma: no cover - expired between the two calls
            return self.client_hmac_key()
        return value


#: How long a Redis call may take before the portal counts locally instead (seconds): a Redis
#: that does not answer must not hold every request for the system's TCP timeout.
REDIS_TIMEOUT_SECONDS = 0.5

_redis_log = logging.getLogger("portal.throttle")


class FallbackThrottle:
    """Redis, and while Redis does not answer, this server's own counters.

    A request is never refused, nor answered with an error, because Redis is down: limits go on
    being counted, per server instead of across servers, and Redis is tried again on the next
    call. What was counted locally during the outage is not carried over when Redis is back, so
    a client can get at most one more window's allowance per server across the outage. Each
    switch is logged once (no key, no address); ``portal doctor`` says whether Redis answers."""

    def __init__(self, primary: RedisThrottle, fallback: Throttle) -> None:
        self._primary = primary
        self._fallback = fallback
        self._down = False
        self._lock = threading.Lock()

    @property
    def redis_down(self) -> bool:
        return self._down

    def _switch(self, down: bool) -> None:
        with self._lock:
            if down == self._down:
                return
            self._down = down
        if down:
            _redis_log.warning("Redis does not answer: rate limits are counted on this server")
        else:
            _redis_log.warning("Redis answers again: rate limits are shared again")

    def _call(self, name: str, *args: str) -> Any:
        try:
            value = getattr(self._primary, name)(*args)
        except redis.RedisError:
            self._switch(True)
            return getattr(self._fallback, name)(*args)
        self._switch(False)
        return value

    def failures(self, key: str) -> int:
        value: int = self._call("failures", key)
        return value

    def record_failure(self, key: str) -> int:
        value: int = self._call("record_failure", key)
        return value

    def reset(self, key: str) -> None:
        self._call("reset", key)

    def retry_after(self, key: str) -> int:
        value: int = self._call("retry_after", key)
        return value

    def client_hmac_key(self) -> bytes:
        value: bytes = self._call("client_hmac_key")
        return value


def make_throttle(
    redis_url: str,
    window_seconds: int,
    prefix: str,
    key_rotation_seconds: int = KEY_ROTATION_SECONDS,
    shared: dict[str, SharedRegion] | None = None,
) -> Throttle:
    """Redis when configured (with this server's counters while it does not answer); else the
    server's shared memory when ``portal serve`` made it; else (one process: the development
    server, the tests) this process's memory."""
    local: Throttle
    if shared is not None and prefix in shared:
        local = SharedThrottle(
            shared[prefix], window_seconds, key_rotation_seconds=key_rotation_seconds
        )
    else:
        local = MemoryThrottle(window_seconds, key_rotation_seconds=key_rotation_seconds)
    if redis_url:
        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        return FallbackThrottle(
            RedisThrottle(client, window_seconds, prefix, key_rotation_seconds), local
        )
    return local


def client_key(throttle: Throttle, address: str) -> str:
    return "client:" + crypto.keyed_digest(throttle.client_hmac_key(), address)


#: The one counter of the portal-wide submission limit.
EVERYONE = "everyone"


@dataclass(frozen=True)
class SubmissionLimits:
    """How many concerns and reporter messages the portal takes: ``everyone_max`` per window
    from everybody together (a flood from many addresses cannot fill the queues), and
    ``client_max`` per (shorter) window from one client. The per-client counter also counts
    refused attempts (a filled honeypot, a wrong access code), so guessing is slowed too; the
    portal-wide one counts only what was stored, so nobody can shut the channel by sending
    junk. ``per_client`` rotates its HMAC key every window (``make_submission_limits``).

    Checking and counting are two steps: two requests at the same moment may both pass the last
    free place. A limit can be overshot by the number of concurrent requests, never more."""

    everyone: Throttle
    everyone_max: int
    per_client: Throttle
    client_max: int

    def wait_seconds(self, client: str) -> int:
        """0 when ``client`` may send now; otherwise seconds until the fullest window ends."""
        waits = []
        if self.everyone.failures(EVERYONE) >= self.everyone_max:
            waits.append(self.everyone.retry_after(EVERYONE))
        if self.per_client.failures(client) >= self.client_max:
            waits.append(self.per_client.retry_after(client))
        return max(waits, default=0)

    def accepted(self, client: str) -> None:
        """One submission was stored."""
        self.everyone.record_failure(EVERYONE)
        self.per_client.record_failure(client)

    def refused(self, client: str) -> None:
        """One attempt was refused as abuse (honeypot, wrong access code)."""
        self.per_client.record_failure(client)


def make_submission_limits(
    redis_url: str,
    everyone_max: int,
    everyone_window_seconds: int,
    client_max: int,
    client_window_seconds: int,
    shared: dict[str, SharedRegion] | None = None,
) -> SubmissionLimits:
    return SubmissionLimits(
        everyone=make_throttle(
            redis_url, everyone_window_seconds, "portal:submit-all", shared=shared
        ),
        everyone_max=everyone_max,
        # The client key lives one window: the same address gets an unrelated key next window.
        per_client=make_throttle(
            redis_url, client_window_seconds, "portal:submit", client_window_seconds, shared
        ),
        client_max=client_max,
    )
