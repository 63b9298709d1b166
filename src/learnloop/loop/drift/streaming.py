"""Streaming concept-drift detectors over a sequence of per-prediction errors or losses.

Feed each detector one number per labelled prediction — ``1``/``0`` for wrong/right, or a loss —
with :meth:`update`; it returns ``True`` on the update where it detects a change and then starts
over on the new regime. Both are O(1) memory in the stream's length (ADWIN: O(log n) buckets).

:class:`PageHinkley`
    Cumulative sum of deviations from the running mean (Page 1954, Hinkley 1971). It flags a
    *sustained* rise of the mean (or fall, or either, by ``direction``) once the cumulative sum
    has climbed ``threshold`` above its lowest point. Cheap, one parameter pair to tune, but the
    threshold is in the stream's units (errors), so it has to suit the error rate's scale.

:class:`ADWIN`
    Adaptive windowing (Bifet & Gavaldà 2007). Keeps a window of recent values in exponential
    buckets and drops the older part whenever some split of the window into old | new has means
    further apart than a Hoeffding/Bernstein bound at confidence ``delta`` allows. No scale to
    tune: ``delta`` is a false-alarm probability.
"""

from __future__ import annotations

import math
from typing import Literal


class PageHinkley:
    """Page–Hinkley test for a change in the mean of a stream.

    Parameters: ``delta`` — magnitude of change tolerated (subtracted from each deviation, so a
    stationary stream drifts the sum downwards; 0.01 keeps a 10 % error rate quiet over tens of
    thousands of predictions and finds a rise to 40 % within about 200); ``threshold`` — how far
    the cumulative sum must rise above its minimum (λ, in the stream's units × steps);
    ``min_instances`` — values seen before any alarm; ``direction`` — ``"up"`` (errors rising,
    the default), ``"down"`` or ``"both"``. Not thread-safe.
    """

    def __init__(
        self,
        delta: float = 0.01,
        threshold: float = 50.0,
        min_instances: int = 30,
        direction: Literal["up", "down", "both"] = "up",
    ) -> None:
        self.delta = delta
        self.threshold = threshold
        self.min_instances = min_instances
        self.direction = direction
        self.reset()

    def reset(self) -> None:
        """Forget everything seen (called after each detection)."""
        self.n = 0
        self.mean = 0.0
        self._up = 0.0  # cumulative sum for a rise, and its minimum
        self._up_min = 0.0
        self._down = 0.0  # cumulative sum for a fall, and its maximum
        self._down_max = 0.0

    def update(self, x: float) -> bool:
        """Add one value; True when a change is detected at this value (then state resets)."""
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self._up += x - self.mean - self.delta
        self._up_min = min(self._up_min, self._up)
        self._down += x - self.mean + self.delta
        self._down_max = max(self._down_max, self._down)
        if self.n < self.min_instances:
            return False
        rise = self._up - self._up_min > self.threshold
        fall = self._down_max - self._down > self.threshold
        detected = {"up": rise, "down": fall, "both": rise or fall}[self.direction]
        if detected:
            self.reset()
        return detected


class ADWIN:
    """ADaptive WINdowing change detector (ADWIN2, exponential histogram of buckets).

    Parameters: ``delta`` — confidence; the chance of a false alarm per check is about ``delta``
    (smaller: fewer false alarms, slower detection); ``max_buckets`` — buckets kept per size
    (``M``; more: finer cut points, more memory); ``clock`` — check for a cut every ``clock``
    values; ``min_window`` — values each side of a cut must hold. Not thread-safe.

    ``width`` is the current window's length and ``estimation`` its mean.
    """

    def __init__(
        self, delta: float = 0.002, max_buckets: int = 5, clock: int = 32, min_window: int = 5
    ) -> None:
        self.delta = delta
        self.max_buckets = max_buckets
        self.clock = clock
        self.min_window = min_window
        # levels[k]: buckets of 2**k values, newest first; a bucket is [count, total, m2]
        self._levels: list[list[list[float]]] = []
        self.width = 0
        self._total = 0.0
        self._ticks = 0

    @property
    def estimation(self) -> float:
        return self._total / self.width if self.width else 0.0

    def update(self, x: float) -> bool:
        """Add one value; True when the window was cut at this value (a change detected)."""
        self._insert([1.0, float(x), 0.0])
        self._ticks += 1
        if self._ticks % self.clock or self.width < 2 * self.min_window:
            return False
        detected = False
        while self._cut_found():
            self._drop_oldest()
            detected = True
        return detected

    def _insert(self, bucket: list[float]) -> None:
        self.width += 1
        self._total += bucket[1]
        level = 0
        while True:
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].insert(0, bucket)
            if len(self._levels[level]) <= self.max_buckets:
                return
            older, oldest = self._levels[level][-2], self._levels[level][-1]
            del self._levels[level][-2:]
            bucket = _merge(oldest, older)
            level += 1

    def _oldest_first(self) -> list[list[float]]:
        return [b for level in reversed(self._levels) for b in reversed(level)]

    def _cut_found(self) -> bool:
        buckets = self._oldest_first()
        count = sum(b[0] for b in buckets)
        whole = buckets[0]
        for b in buckets[1:]:
            whole = _merge(whole, b)
        variance = whole[2] / count
        log_term = math.log(2 * math.log(count) / self.delta)
        n0, s0 = 0.0, 0.0
        for b in buckets[:-1]:
            n0, s0 = n0 + b[0], s0 + b[1]
            n1 = count - n0
            if n0 < self.min_window or n1 < self.min_window:
                continue
            inv = 1 / n0 + 1 / n1
            bound = math.sqrt(2 * inv * variance * log_term) + 2 / 3 * log_term * inv
            if abs(s0 / n0 - (self._total - s0) / n1) > bound:
                return True
        return False

    def _drop_oldest(self) -> None:
        for level in reversed(self._levels):
            if level:
                bucket = level.pop()
                self.width -= int(bucket[0])
                self._total -= bucket[1]
                return


def _merge(a: list[float], b: list[float]) -> list[float]:
    """Count, total and sum of squared deviations of two buckets together (Chan et al.)."""
    n = a[0] + b[0]
    delta = b[1] / b[0] - a[1] / a[0]
    return [n, a[1] + b[1], a[2] + b[2] + delta * delta * a[0] * b[0] / n]
