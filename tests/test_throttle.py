"""Failure counters in memory and in Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from portal.services.throttle import (
    KEY_ROTATION_SECONDS,
    MemoryThrottle,
    RedisThrottle,
    Throttle,
    client_key,
)
from tests.conftest import NO_REDIS, REDIS_URL


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
