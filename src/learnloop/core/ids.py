"""Identifiers: UUIDv7 (time-ordered, RFC 9562) without a third-party package."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

_lock = threading.Lock()
# ids are unique and time-ordered, not secrets: a fast PRNG seeded from the OS is enough
_random = random.Random(int.from_bytes(os.urandom(16), "big"))
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7; monotonic within this process (a 12-bit counter orders same-millisecond ids)."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = 0
        counter = _counter
    rand = _random.getrandbits(62)
    value = (ms & 0xFFFFFFFFFFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_id() -> str:
    return str(uuid7())
