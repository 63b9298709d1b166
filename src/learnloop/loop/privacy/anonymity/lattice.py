"""The generalization lattice: evaluating nodes, exhaustive and greedy search."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from learnloop.loop.privacy.anonymity.ladder import _Ladder

_RECODE_ABOVE = 1 << 40  # re-factorize combined class keys before they can overflow int64


@dataclass
class _Node:
    levels: tuple[int, ...]
    violations: int
    loss: float  # mean NCP, suppressed rows counted as 1
    classes: NDArray[Any]  # row -> class index
    violating: NDArray[Any]  # row -> in a violating class


class _Lattice:
    """Evaluates lattice nodes; only (violations, loss) is cached, the row arrays are not."""

    def __init__(
        self,
        ladders: Sequence[_Ladder],
        sensitive_codes: Sequence[NDArray[Any]],
        k: int,
        l: int | None,  # noqa: E741
        budget: int,
    ) -> None:
        self.ladders = list(ladders)
        self.sensitive_codes = list(sensitive_codes)
        self.k = k
        self.l = l
        self.budget = budget
        self.n = len(ladders[0].codes0)
        self.top = tuple(ladder.max_level for ladder in ladders)
        self._scores: dict[tuple[int, ...], tuple[int, float]] = {}

    @property
    def evaluated(self) -> int:
        return len(self._scores)

    def evaluate(self, levels: tuple[int, ...]) -> _Node:
        key = np.zeros(self.n, dtype=np.int64)
        span = 1
        for ladder, level in zip(self.ladders, levels, strict=True):
            if span * ladder.cards[level] > _RECODE_ABOVE:
                key, uniques = pd.factorize(key)
                span = len(uniques)
            key = key * ladder.cards[level] + ladder.codes[level][ladder.codes0]
            span *= ladder.cards[level]
        classes, uniques = pd.factorize(key)
        count = len(uniques)
        bad = np.bincount(classes, minlength=count) < self.k
        if self.l is not None:
            for codes in self.sensitive_codes:
                bad |= _distinct_per_class(classes, codes, count) < self.l
        violating = bad[classes]
        violations = int(violating.sum())
        loss = 0.0
        if self.n:
            kept = ~violating
            for ladder, level in zip(self.ladders, levels, strict=True):
                loss += float(ladder.ncp[level][ladder.codes0][kept].sum()) + violations
            loss /= self.n * len(self.ladders)
        self._scores[levels] = (violations, loss)
        return _Node(levels, violations, loss, classes, violating)

    def score(self, levels: tuple[int, ...]) -> tuple[int, float]:
        """``(rows in violating classes, loss)`` of a node."""
        cached = self._scores.get(levels)
        if cached is None:
            node = self.evaluate(levels)
            cached = (node.violations, node.loss)
        return cached

    def feasible(self, levels: tuple[int, ...]) -> bool:
        return self.score(levels)[0] <= self.budget

    def _rank(self, levels: tuple[int, ...]) -> tuple[float, int, int, tuple[int, ...]]:
        violations, loss = self.score(levels)
        return (round(loss, 12), violations, sum(levels), levels)

    def exhaustive(self) -> tuple[int, ...]:
        best: tuple[int, ...] | None = None
        for levels in itertools.product(*(range(top + 1) for top in self.top)):
            if self.feasible(levels) and (best is None or self._rank(levels) < self._rank(best)):
                best = levels
        assert best is not None  # the top node is feasible (checked before the search)
        return best

    def greedy(self) -> tuple[int, ...]:
        current = tuple(0 for _ in self.ladders)
        while not self.feasible(current):
            best: tuple[tuple[float, float], tuple[int, ...]] | None = None
            for i, top in enumerate(self.top):
                if current[i] == top:
                    continue
                levels = current[:i] + (current[i] + 1,) + current[i + 1 :]
                removed = self.score(current)[0] - self.score(levels)[0]
                added = self._generalization_loss(levels) - self._generalization_loss(current)
                score = (1.0, removed / max(added, 1e-12)) if removed > 0 else (0.0, -added)
                if best is None or score > best[0]:
                    best = (score, levels)
            assert best is not None  # below the top some QI can still rise
            current = best[1]
        improved = True
        while improved:
            improved = False
            for i in range(len(self.ladders)):
                if current[i] == 0:
                    continue
                levels = current[:i] + (current[i] - 1,) + current[i + 1 :]
                if self.feasible(levels) and self._rank(levels) < self._rank(current):
                    current, improved = levels, True
        return current

    def _generalization_loss(self, levels: tuple[int, ...]) -> float:
        if not self.n:
            return 0.0
        total = sum(
            float(ladder.ncp[level][ladder.codes0].mean())
            for ladder, level in zip(self.ladders, levels, strict=True)
        )
        return total / len(self.ladders)


def _distinct_per_class(classes: NDArray[Any], codes: NDArray[Any], count: int) -> NDArray[Any]:
    width = int(codes.max()) + 1 if codes.size else 1
    pairs = pd.unique(classes.astype(np.int64) * width + codes)
    return np.bincount(pairs // width, minlength=count)
