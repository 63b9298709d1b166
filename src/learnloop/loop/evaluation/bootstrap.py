"""The paired bootstrap: a confidence interval for the metric difference of two models.

Both models are scored on the *same* resampled rows in every replicate. Rows that are hard for
one model are usually hard for the other, so the per-replicate difference varies much less than
either metric does and the interval is far narrower than one from resampling each model's rows
independently — which is what makes a regression gate on a few thousand rows decisive.

Resampling is done in blocks of ``(b, n)`` row indices drawn from one seeded generator. For a
:class:`~learnloop.loop.evaluation.kernels.ResampledMetric` each block becomes a matrix of row
counts evaluated without a Python loop; any other ``metric_fn`` is called once per replicate and
model on the same index rows, so both paths see identical replicates for the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.evaluation.kernels import ResampledMetric

BLOCK_CELLS = 2_000_000
"""Replicates are drawn in blocks of at most this many row indices (about 16 MB each)."""


def paired_bootstrap(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    champion_pred: np.ndarray,
    candidate_pred: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """``(observed, ci_low, ci_high)`` of ``metric(candidate) - metric(champion)``.

    ``observed`` is the difference on all rows; the interval holds the ``alpha / 2`` and
    ``1 - alpha / 2`` percentiles (linear interpolation) of the difference over ``n_boot``
    replicates, each drawing ``n`` row indices with replacement and scoring both models on those
    rows. ``metric_fn(y_true[rows], pred[rows])`` must accept index-selected arrays (predictions
    may be ``(n,)`` or ``(n, K)``). Replicates on which the metric is undefined (NaN, e.g.
    ROC-AUC of a resample holding one class) are dropped. Deterministic for a given ``seed``.

    Raises :class:`InvalidInput` on mismatched lengths, no rows, ``n_boot < 1``, ``alpha``
    outside ``(0, 1)``, or a metric undefined on all rows or on every replicate.
    """
    y = np.asarray(y_true)
    champion = np.asarray(champion_pred)
    candidate = np.asarray(candidate_pred)
    _check(y, champion, candidate, n_boot, alpha)
    n = len(y)
    rng = np.random.default_rng(seed)
    if isinstance(metric_fn, ResampledMetric):
        champion_at = metric_fn.prepare(y, champion)
        candidate_at = metric_fn.prepare(y, candidate)
        unit = np.ones((1, n))
        observed = float(candidate_at(unit)[0] - champion_at(unit)[0])
        differences = np.concatenate(
            [
                candidate_at(counts) - champion_at(counts)
                for counts in map(_counts, _index_blocks(rng, n, n_boot))
            ]
        )
    else:
        observed = float(metric_fn(y, candidate)) - float(metric_fn(y, champion))
        differences = np.array(
            [
                float(metric_fn(y[rows], candidate[rows]))
                - float(metric_fn(y[rows], champion[rows]))
                for block in _index_blocks(rng, n, n_boot)
                for rows in block
            ]
        )
    if not np.isfinite(observed):
        raise InvalidInput("cannot bootstrap", [Issue("y_true", "metric undefined on these rows")])
    differences = differences[np.isfinite(differences)]
    if differences.size == 0:
        raise InvalidInput(
            "cannot bootstrap", [Issue("y_true", "metric undefined on every replicate")]
        )
    low, high = np.quantile(differences, [alpha / 2, 1 - alpha / 2])
    return observed, float(low), float(high)


def _check(
    y: np.ndarray, champion: np.ndarray, candidate: np.ndarray, n_boot: int, alpha: float
) -> None:
    issues = []
    if y.ndim != 1 or len(y) == 0:
        issues.append(Issue("y_true", "expected a non-empty 1-D array"))
    for name, pred in (("champion_pred", champion), ("candidate_pred", candidate)):
        if pred.ndim == 0 or len(pred) != len(y):
            issues.append(Issue(name, f"expected {len(y)} rows, got shape {pred.shape}"))
    if champion.shape != candidate.shape:
        issues.append(Issue("candidate_pred", f"shape {candidate.shape} ≠ {champion.shape}"))
    if n_boot < 1:
        issues.append(Issue("n_boot", "must be at least 1"))
    if not 0 < alpha < 1:
        issues.append(Issue("alpha", "must lie in (0, 1)"))
    if issues:
        raise InvalidInput("cannot bootstrap", issues)


def _index_blocks(rng: np.random.Generator, n: int, n_boot: int) -> Iterator[np.ndarray]:
    """``(b, n)`` blocks of row indices drawn with replacement, ``n_boot`` rows in all."""
    per_block = max(1, min(n_boot, BLOCK_CELLS // n))
    for start in range(0, n_boot, per_block):
        yield rng.integers(0, n, size=(min(per_block, n_boot - start), n))


def _counts(indices: np.ndarray) -> np.ndarray:
    """How often each row is drawn, per replicate: ``(b, n)`` indices → ``(b, n)`` counts."""
    b, n = indices.shape
    flat = (indices + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
