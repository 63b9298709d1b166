"""The adaptive batcher: batches under concurrency, keeps order, bounds wait, spreads errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from learnloop.core.batching import AdaptiveBatcher


def test_concurrent_requests_share_batches_and_keep_their_order() -> None:
    calls: list[int] = []
    seen: list[tuple[int, float]] = []

    def double(items: Sequence[int]) -> list[int]:
        calls.append(len(items))
        time.sleep(0.01)
        return [2 * x for x in items]

    batcher = AdaptiveBatcher(
        double, max_batch_size=8, max_wait_ms=30, observe=lambda n, q: seen.append((n, q))
    )
    futures = [batcher.submit([i, i + 100]) for i in range(10)]
    results = [f.result(5) for f in futures]
    batcher.close()
    assert results == [[2 * i, 2 * (i + 100)] for i in range(10)]
    assert sum(calls) == 20 and max(calls) <= 8 and len(calls) < 10
    assert [n for n, _ in seen] == calls and all(q >= 0 for _, q in seen)


def test_a_lone_request_waits_at_most_max_wait() -> None:
    batcher = AdaptiveBatcher(lambda items: list(items), max_batch_size=64, max_wait_ms=20)
    started = time.perf_counter()
    assert batcher.submit([1]).result(5) == [1]
    assert time.perf_counter() - started < 0.5
    batcher.close()


def test_an_error_reaches_every_request_of_the_batch() -> None:
    gate = threading.Event()

    def boom(items: Sequence[int]) -> list[int]:
        gate.wait(1)
        raise ValueError("model failed")

    batcher = AdaptiveBatcher(boom, max_batch_size=4, max_wait_ms=50)
    futures = [batcher.submit([i]) for i in range(3)]
    gate.set()
    for f in futures:
        with pytest.raises(ValueError, match="model failed"):
            f.result(5)
    batcher.close()
    closed = batcher.submit([1])
    with pytest.raises(RuntimeError, match="closed"):
        closed.result(1)
