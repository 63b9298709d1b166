"""The Redis response cache against the real Redis (CI); skips locally, with the reason, if
no Redis answers."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from learnloop.core.cache import cache_key

REDIS_URL = os.environ.get("LEARNLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def cache():  # type: ignore[no-untyped-def]
    from learnloop.storage.cache.redis_cache import RedisResponseCache

    found = RedisResponseCache(REDIS_URL, generation_ttl_s=0.0, prefix=f"t{uuid.uuid4().hex[:8]}")
    if not found.ping():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Redis at {REDIS_URL} does not answer")
        pytest.skip(f"Redis tests skipped: no Redis at {REDIS_URL}")
    return found


def test_values_round_trip_and_expire(cache) -> None:  # type: ignore[no-untyped-def]
    key = cache_key("m", 0, "1", "abc")
    assert cache.get(key) is None
    cache.set(key, {"prediction": 1, "probabilities": {"0": 0.2, "1": 0.8}}, ttl_s=0.2)
    assert cache.get(key) == {"prediction": 1, "probabilities": {"0": 0.2, "1": 0.8}}
    time.sleep(0.3)
    assert cache.get(key) is None


def test_bumping_the_generation_is_seen_by_another_process_cache(cache) -> None:  # type: ignore[no-untyped-def]
    from learnloop.storage.cache.redis_cache import RedisResponseCache

    other = RedisResponseCache(REDIS_URL, generation_ttl_s=0.0, prefix=cache.prefix)
    assert cache.generation("m") == other.generation("m") == 0
    old = cache_key("m", cache.generation("m"), "1", "abc")
    cache.set(old, {"prediction": 0}, ttl_s=60)
    assert other.bump("m") == 1
    assert cache.generation("m") == 1
    assert cache_key("m", cache.generation("m"), "1", "abc") != old


def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    from learnloop.storage.cache.redis_cache import RedisResponseCache

    dead = RedisResponseCache("redis://127.0.0.1:1/0")
    assert dead.get("k") is None
    dead.set("k", {"a": 1}, 1.0)  # swallowed: a cache outage must not fail predictions
    assert dead.ping() is False


def test_bump_deletes_the_models_entries_and_only_those(cache) -> None:  # type: ignore[no-untyped-def]
    """Erasure bumps the generation: the old answers must be gone from Redis, not just
    unreachable until their TTL."""
    import redis

    raw = redis.Redis.from_url(REDIS_URL)
    mine = [cache_key("m", cache.generation("m"), "1", f"d{i}") for i in range(3)]
    other = cache_key("m2", cache.generation("m2"), "1", "d0")
    for key in [*mine, other]:
        cache.set(key, {"prediction": 1}, ttl_s=600)
    cache.bump("m")
    assert all(raw.get(f"{cache.prefix}:{k}") is None for k in mine)
    assert raw.get(f"{cache.prefix}:{other}") is not None
