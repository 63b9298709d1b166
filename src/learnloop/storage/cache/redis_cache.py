"""RedisResponseCache: the response cache shared by every API process through Redis.

Values are JSON with a Redis TTL; a model's generation is a Redis counter (``INCR`` on
invalidation), read at most every ``generation_ttl_s`` seconds per process, so another process's
deployment change invalidates here within that time (at once in the process that made it).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from learnloop.core.cache import cache_key
from learnloop.core.errors import MissingDependency, StorageError


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


class RedisResponseCache:
    def __init__(self, url: str, *, generation_ttl_s: float = 1.0, prefix: str = "ll") -> None:
        try:
            import redis
        except ImportError as e:
            raise MissingDependency("redis", "redis") from e
        self._redis = redis.Redis.from_url(url, socket_timeout=0.5)
        self._errors = redis.RedisError
        self.prefix = prefix
        self.generation_ttl_s = generation_ttl_s
        self._generations: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self._redis.get(f"{self.prefix}:{key}")
        except self._errors:
            return None  # a cache outage must not fail predictions
        return None if raw is None else dict(json.loads(raw))

    def set(self, key: str, value: Mapping[str, Any], ttl_s: float) -> None:
        with contextlib.suppress(self._errors):  # a cache outage must not fail predictions
            self._redis.set(f"{self.prefix}:{key}", json.dumps(value), px=max(1, int(ttl_s * 1000)))

    def generation(self, model: str) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._generations.get(model)
        if hit and now - hit[0] < self.generation_ttl_s:
            return hit[1]
        try:
            value = int(self._redis.get(f"{self.prefix}:gen:{model}") or 0)
        except self._errors:
            return hit[1] if hit else 0
        with self._lock:
            self._generations[model] = (now, value)
        return value

    def bump(self, model: str) -> int:
        """New generation for ``model``, and its cached entries deleted (not just made
        unreachable: an erasure must not leave a subject's answers in Redis until their TTL)."""
        try:
            value = int(self._redis.incr(f"{self.prefix}:gen:{model}"))
            model_part = cache_key(_glob_escape(model), 0, "", "").rsplit(":", 3)[0]  # "ll:<model>"
            pattern = f"{self.prefix}:{model_part}:*"
            batch: list[bytes] = []
            for key in self._redis.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    self._redis.delete(*batch)
                    batch.clear()
            if batch:
                self._redis.delete(*batch)
        except self._errors as e:
            raise StorageError(f"cannot invalidate the Redis cache: {e}") from e
        with self._lock:
            self._generations[model] = (time.monotonic(), value)
        return value

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except self._errors:
            return False
