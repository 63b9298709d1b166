"""Prediction latency of a model, measured in-process with ``time.perf_counter``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from learnloop.core.errors import InvalidInput, Issue


def latency_profile(
    predict: Callable[[list[dict]], Any],
    rows: list[dict],
    *,
    warmup: int = 20,
    requests: int = 300,
    batch: int = 1,
) -> dict[str, float]:
    """Time ``requests`` sequential calls of ``predict`` on batches of ``batch`` rows.

    Batches cycle through ``rows`` in order and are built before timing starts; ``warmup``
    untimed calls come first (caches, lazy initialisation, JIT). Returns milliseconds per call —
    ``p50_ms``, ``p95_ms``, ``p99_ms`` (linearly interpolated percentiles), ``mean_ms``,
    ``max_ms`` — and ``throughput_rows_per_s``: rows predicted per second of the timed loop, one
    caller at a time. Also echoes ``requests`` and ``batch``. Exceptions of ``predict``
    propagate.

    Raises :class:`InvalidInput` for no rows, ``requests < 1``, ``batch < 1`` or ``warmup < 0``.
    """
    issues = []
    if not rows:
        issues.append(Issue("rows", "at least one row needed"))
    for name, value, least in (
        ("requests", requests, 1),
        ("batch", batch, 1),
        ("warmup", warmup, 0),
    ):
        if value < least:
            issues.append(Issue(name, f"must be at least {least}"))
    if issues:
        raise InvalidInput("cannot profile", issues)
    batches = [[rows[(i * batch + j) % len(rows)] for j in range(batch)] for i in range(requests)]
    for i in range(warmup):
        predict(batches[i % len(batches)])
    seconds = np.empty(requests)
    started = time.perf_counter()
    for i in range(requests):
        t0 = time.perf_counter()
        predict(batches[i % len(batches)])
        seconds[i] = time.perf_counter() - t0
    elapsed = time.perf_counter() - started
    p50, p95, p99 = np.percentile(seconds * 1000, [50, 95, 99])
    return {
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(seconds.mean() * 1000),
        "max_ms": float(seconds.max() * 1000),
        "throughput_rows_per_s": requests * batch / elapsed,
        "requests": float(requests),
        "batch": float(batch),
    }
