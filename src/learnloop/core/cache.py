"""Response cache: outputs keyed by (model, generation, version, canonical input hash).

A model's *generation* is bumped whenever its deployment changes, which invalidates every
cached output of that model at once without scanning keys (old entries age out by TTL/LRU).
The in-process :class:`MemoryResponseCache` is the default; a Redis implementation lives in
``learnloop.storage.cache``. Implementations are thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol


def input_hash(item: Mapping[str, Any]) -> str:
    """Canonical hash of one input: key order and float formatting do not matter."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


class ResponseCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def set(self, key: str, value: Mapping[str, Any], ttl_s: float) -> None: ...

    def generation(self, model: str) -> int: ...

    def bump(self, model: str) -> int:
        """Invalidate every entry of ``model``; return the new generation."""
        ...


def cache_key(model: str, generation: int, version: str, digest: str) -> str:
    return f"ll:{model}:{generation}:{version}:{digest}"


class MemoryResponseCache:
    """LRU with per-entry TTL, bounded by ``max_entries``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            if hit[0] < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return hit[1]

    def set(self, key: str, value: Mapping[str, Any], ttl_s: float) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl_s, dict(value))
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def generation(self, model: str) -> int:
        with self._lock:
            return self._generations.get(model, 0)

    def bump(self, model: str) -> int:
        with self._lock:
            self._generations[model] = self._generations.get(model, 0) + 1
            prefix = f"ll:{model}:"
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]
            return self._generations[model]
