"""Failure counters in memory and in Redis."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest
import redis

from portal.services.reporting.throttle import (
    KEY_ROTATION_SECONDS,
    MemoryThrottle,
    RedisThrottle,
    SharedRegion,
    SharedThrottle,
    Throttle,
    client_key,
)
from tests.support.factories import NO_REDIS, REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_counts_within_the_window_and_forgets_after() -> None:
    clock = Clock()
    throttle = MemoryThrottle(60, clock=clock)
    assert [throttle.record_failure("k") for _ in range(3)] == [1, 2, 3]
    assert throttle.failures("k") == 3 and throttle.failures("other") == 0
    clock.now += 61
    assert throttle.failures("k") == 0
    throttle.record_failure("k")
    throttle.reset("k")
    assert throttle.failures("k") == 0


def test_memory_client_key_rotates_and_never_contains_the_address() -> None:
    clock = Clock()
    throttle = MemoryThrottle(60, clock=clock)
    first = client_key(throttle, "203.0.113.7")
    assert "203.0.113.7" not in first and first == client_key(throttle, "203.0.113.7")
    clock.now += KEY_ROTATION_SECONDS + 1
    assert client_key(throttle, "203.0.113.7") != first


@pytest.fixture
def redis_throttle() -> Iterator[RedisThrottle]:
    if not REDIS_URL:
        pytest.skip(NO_REDIS)
    client = redis.Redis.from_url(REDIS_URL)
    prefix = "portal:test-throttle"
    yield RedisThrottle(client, 2, prefix=prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_redis_counts_expire_and_key_is_shared(redis_throttle: RedisThrottle) -> None:
    assert [redis_throttle.record_failure("k") for _ in range(2)] == [1, 2]
    assert redis_throttle.failures("k") == 2
    ttl = redis_throttle._redis.ttl("portal:test-throttle:k")
    assert isinstance(ttl, int) and 0 < ttl <= 2
    redis_throttle.reset("k")
    assert redis_throttle.failures("k") == 0
    twin: Throttle = RedisThrottle(redis_throttle._redis, 2, prefix="portal:test-throttle")
    assert twin.client_hmac_key() == redis_throttle.client_hmac_key()
    key_ttl = redis_throttle._redis.ttl("portal:test-throttle:client-key")
    assert isinstance(key_ttl, int) and 0 < key_ttl <= KEY_ROTATION_SECONDS


def _count_in_child(throttle: Throttle, times: int) -> None:
    for _ in range(times):
        throttle.record_failure("client:shared")


def test_shared_counts_across_forked_processes_and_forgets_after() -> None:
    """The counters ``portal serve`` makes before forking: what a child (a worker) counts,
    the parent and every other child see, with the same client key; the window and the key
    rotation behave as in memory."""
    region = SharedRegion("portal-test")
    clock = Clock()
    throttle = SharedThrottle(region, 60, clock=clock, key_rotation_seconds=600)
    key = client_key(throttle, "203.0.113.7")
    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=_count_in_child, args=(throttle, 5)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert throttle.failures("client:shared") == 15
    assert throttle.failures("other") == 0
    assert [throttle.record_failure(key) for _ in range(3)] == [1, 2, 3]
    assert throttle.retry_after(key) == 60
    clock.now += 61
    assert throttle.failures(key) == 0 and throttle.failures("client:shared") == 0
    throttle.record_failure(key)
    throttle.reset(key)
    assert throttle.failures(key) == 0
    assert client_key(throttle, "203.0.113.7") == key
    clock.now += 600
    assert client_key(throttle, "203.0.113.7") != key
    # The shared table holds keyed digests only, never the address nor the counter's key.
    memory = bytes(region._map)
    assert b"203.0.113.7" not in memory and key.encode() not in memory
    assert b"client:shared" not in memory


def test_a_flood_of_keys_keeps_every_slot_bounded() -> None:
    """More distinct keys than the table holds in one window: the table stays its size and
    every key still counts from 1 (the oldest counters give way, as docs/limits.md says)."""
    region = SharedRegion("portal-test-flood")
    throttle = SharedThrottle(region, 60, clock=Clock())
    for n in range(SharedRegion.SLOTS + 100):
        assert throttle.record_failure(f"k{n}") == 1
    assert throttle.record_failure(f"k{SharedRegion.SLOTS + 99}") == 2
