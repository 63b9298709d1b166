"""Count-weighted metric kernels: one implementation for plain scores and bootstrap replicates.

A bootstrap replicate that draws row ``i`` ``c_i`` times has exactly the metric of the original
rows weighted by the counts ``c``. Each kernel here is *prepared* once from the true values and
one model's predictions (argmax, per-row losses, a sort by score, calibration bins) and then
evaluates a whole block of count vectors — a ``(b, n)`` weight matrix — with matrix products,
grouped sums and cumulative sums. That is what lets :func:`paired_bootstrap` run 1000 replicates
of ROC-AUC on 20 000 rows in well under a second. The plain metric is the kernel at unit
weights, so the values a gate reports are the ones :func:`classification_metrics` and
:func:`regression_metrics` report.

Classification kernels take class codes ``0..K-1`` and an ``(n, K)`` probability matrix; a 1-D
vector is read as the probability of code 1 in a binary problem. A value that is undefined for a
weighting (ROC-AUC when one class has no weight, R² of a constant truth) is NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

Evaluator = Callable[[np.ndarray], np.ndarray]
"""Maps a ``(b, n)`` matrix of non-negative row weights to ``b`` metric values."""

LOG_LOSS_EPS = 1e-15
"""Probabilities of the true class are clipped to ``[LOG_LOSS_EPS, 1]`` before the log."""


@dataclass(frozen=True)
class ResampledMetric:
    """A metric with a count-weighted form, so that a bootstrap needs no per-replicate loop.

    ``prepare(y_true, pred)`` does the per-model work once and returns an :data:`Evaluator`.
    Calling the metric, ``metric(y_true, pred)``, gives its value at unit weights; that makes
    every ``ResampledMetric`` a valid ``metric_fn`` for :func:`paired_bootstrap`, which detects
    the type and takes the vectorized path.
    """

    name: str
    higher_is_better: bool
    task: Literal["classification", "regression"]
    prepare: Callable[[np.ndarray, np.ndarray], Evaluator]

    def __call__(self, y_true: np.ndarray, pred: np.ndarray) -> float:
        y = np.asarray(y_true)
        return float(self.prepare(y, np.asarray(pred))(np.ones((1, len(y))))[0])


def probability_matrix(pred: np.ndarray) -> np.ndarray:
    """``pred`` as an ``(n, K)`` float matrix; a 1-D vector ``p`` becomes ``[1 - p, p]``."""
    p = np.asarray(pred, dtype=np.float64)
    return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p


def _divide(num: np.ndarray, den: np.ndarray, undefined: float) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), undefined), where=den > 0)


def _mean_of(rows: np.ndarray) -> Evaluator:
    return lambda w: (w @ rows) / w.sum(axis=1)


def _nan_mean(values: np.ndarray) -> np.ndarray:
    """Mean over axis 1 ignoring NaN (NaN where a row has no value), without warnings."""
    valid = ~np.isnan(values)
    total = np.where(valid, values, 0.0).sum(axis=1)
    return _divide(total, valid.sum(axis=1).astype(np.float64), np.nan)


def accuracy_kernel(y: np.ndarray, pred: np.ndarray) -> Evaluator:
    """Share of rows whose most probable class is the true one."""
    p = probability_matrix(pred)
    return _mean_of((p.argmax(axis=1) == y.astype(np.intp)).astype(np.float64))


def log_loss_kernel(y: np.ndarray, pred: np.ndarray) -> Evaluator:
    """Mean of ``-log p(true class)`` (probabilities as given, not renormalized)."""
    p = probability_matrix(pred)
    true_p = p[np.arange(len(p)), y.astype(np.intp)]
    return _mean_of(-np.log(np.clip(true_p, LOG_LOSS_EPS, 1.0)))


def brier_kernel(y: np.ndarray, pred: np.ndarray) -> Evaluator:
    """Binary: mean ``(p_1 - [y = 1])²``; multiclass: mean of ``Σ_k (p_k - [y = k])²``."""
    p = probability_matrix(pred)
    codes = y.astype(np.intp)
    if p.shape[1] == 2:
        return _mean_of((p[:, 1] - (codes == 1)) ** 2)
    return _mean_of(((p - np.eye(p.shape[1])[codes]) ** 2).sum(axis=1))


def ece_kernel(y: np.ndarray, pred: np.ndarray, n_bins: int = 15) -> Evaluator:
    """Expected calibration error of the top-class probability over equal-width bins.

    Bin ``b`` holds the rows whose top probability lies in ``(b / n_bins, (b + 1) / n_bins]``
    (a probability of 0 goes to the first bin); ECE is ``Σ_b |Σ_{i∈b} (correct_i - conf_i)| / n``,
    which equals ``Σ_b (n_b / n) · |accuracy_b - confidence_b|``.
    """
    p = probability_matrix(pred)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y.astype(np.intp)).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.intp) - 1, 0, n_bins - 1)
    gaps = np.zeros((len(p), n_bins))
    gaps[np.arange(len(p)), bins] = correct - confidence
    return lambda w: np.abs(w @ gaps).sum(axis=1) / w.sum(axis=1)


def _confusion_kernel(kind: Literal["precision", "recall", "f1"]) -> Callable[..., Evaluator]:
    """Precision, recall or F1 of the argmax prediction (zero where undefined, like sklearn).

    Binary problems score class code 1; multiclass ones take the macro mean over the classes
    present among the true or predicted labels (sklearn's ``average="macro"`` default).
    """

    def prepare(y: np.ndarray, pred: np.ndarray) -> Evaluator:
        p = probability_matrix(pred)
        k = p.shape[1]
        truth = np.eye(k)[y.astype(np.intp)]
        guess = np.eye(k)[p.argmax(axis=1)]
        both = truth * guess
        indicators = np.hstack([both, guess - both, truth - both])  # tp | fp | fn, per class

        def evaluate(w: np.ndarray) -> np.ndarray:
            sums = w @ indicators
            tp, fp, fn = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :]
            if kind == "precision":
                score = _divide(tp, tp + fp, 0.0)
            elif kind == "recall":
                score = _divide(tp, tp + fn, 0.0)
            else:
                score = _divide(2 * tp, 2 * tp + fp + fn, 0.0)
            if k == 2:
                return score[:, 1]
            present = (tp + fp + fn) > 0
            return (score * present).sum(axis=1) / present.sum(axis=1)

        return evaluate

    return prepare


def _cumulative(w: np.ndarray) -> np.ndarray:
    """Running sums along rows with a leading zero column: ``out[:, j] = w[:, :j].sum(1)``."""
    out = np.zeros((len(w), w.shape[1] + 1))
    np.cumsum(w, axis=1, out=out[:, 1:])
    return out


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> Evaluator:
    """P(score of a positive > score of a negative), ties counting one half (Mann–Whitney).

    Each positive wins against the negative weight below its score and half the tied weight:
    ``(below + up_to) / 2`` read from the running sum of negatives sorted by score.
    """
    positives = np.flatnonzero(positive)
    negatives = np.flatnonzero(~positive)
    negatives = negatives[np.argsort(scores[negatives], kind="stable")]
    below = np.searchsorted(scores[negatives], scores[positives], side="left")
    up_to = np.searchsorted(scores[negatives], scores[positives], side="right")

    def evaluate(w: np.ndarray) -> np.ndarray:
        negative_sums = _cumulative(w[:, negatives])
        positive_w = w[:, positives]
        wins = 0.5 * (positive_w * (negative_sums[:, below] + negative_sums[:, up_to])).sum(axis=1)
        return _divide(wins, positive_w.sum(axis=1) * negative_sums[:, -1], np.nan)

    return evaluate


def _binary_average_precision(positive: np.ndarray, scores: np.ndarray) -> Evaluator:
    """``Σ_t (R_t - R_{t-1}) P_t`` over distinct score thresholds, as sklearn computes it.

    Written per positive row: each adds its weight times the precision at its own score
    (positive and negative weight scored at least as high, ties included), over all positives.
    """
    positives = np.flatnonzero(positive)
    positives = positives[np.argsort(-scores[positives], kind="stable")]
    negatives = np.flatnonzero(~positive)
    negatives = negatives[np.argsort(-scores[negatives], kind="stable")]
    positives_at = np.searchsorted(-scores[positives], -scores[positives], side="right")
    negatives_at = np.searchsorted(-scores[negatives], -scores[positives], side="right")

    def evaluate(w: np.ndarray) -> np.ndarray:
        positive_w = w[:, positives]
        positive_sums = _cumulative(positive_w)
        true_positives = positive_sums[:, positives_at]
        flagged = true_positives + _cumulative(w[:, negatives])[:, negatives_at]
        precision = _divide(true_positives, flagged, 0.0)
        return _divide((positive_w * precision).sum(axis=1), positive_sums[:, -1], np.nan)

    return evaluate


def _ranking_kernel(
    binary: Callable[[np.ndarray, np.ndarray], Evaluator],
) -> Callable[[np.ndarray, np.ndarray], Evaluator]:
    """Binary: class code 1 against the rest; multiclass: one-vs-rest, macro over classes
    for which the value is defined (both the class and the rest carry weight)."""

    def prepare(y: np.ndarray, pred: np.ndarray) -> Evaluator:
        p = probability_matrix(pred)
        codes = y.astype(np.intp)
        if p.shape[1] == 2:
            return binary(codes == 1, p[:, 1])
        per_class = [binary(codes == c, p[:, c]) for c in range(p.shape[1])]
        return lambda w: _nan_mean(np.column_stack([one(w) for one in per_class]))

    return prepare


def rmse_kernel(y: np.ndarray, pred: np.ndarray) -> Evaluator:
    """Root of the mean squared error."""
    squared = (np.asarray(y, np.float64) - np.asarray(pred, np.float64)) ** 2
    return lambda w: np.sqrt((w @ squared) / w.sum(axis=1))


def mae_kernel(y: np.ndarray, pred: np.ndarray) -> Evaluator:
    """Mean absolute error."""
    return _mean_of(np.abs(np.asarray(y, np.float64) - np.asarray(pred, np.float64)))


def r2_kernel(y: np.ndarray, pred: np.ndarray) -> Evaluator:
    """``1 - SSE / SST``; NaN when the (weighted) truth is constant."""
    truth = np.asarray(y, np.float64)
    centred = truth - truth.mean()  # keeps SST = Σw y² - (Σw y)² / Σw free of cancellation
    squared = (truth - np.asarray(pred, np.float64)) ** 2
    scale = max(float(np.abs(centred).max(initial=0.0)), 1e-300)

    def evaluate(w: np.ndarray) -> np.ndarray:
        total = w.sum(axis=1)
        sst = w @ centred**2 - (w @ centred) ** 2 / total
        degenerate = sst <= 1e-12 * total * scale**2
        return np.where(degenerate, np.nan, 1.0 - (w @ squared) / np.where(degenerate, 1, sst))

    return evaluate


_CLASSIFICATION: dict[str, tuple[bool, Callable[[np.ndarray, np.ndarray], Evaluator]]] = {
    "accuracy": (True, accuracy_kernel),
    "precision": (True, _confusion_kernel("precision")),
    "recall": (True, _confusion_kernel("recall")),
    "f1": (True, _confusion_kernel("f1")),
    "roc_auc": (True, _ranking_kernel(_binary_auc)),
    "pr_auc": (True, _ranking_kernel(_binary_average_precision)),
    "log_loss": (False, log_loss_kernel),
    "ece": (False, ece_kernel),
    "brier": (False, brier_kernel),
}
_REGRESSION: dict[str, tuple[bool, Callable[[np.ndarray, np.ndarray], Evaluator]]] = {
    "rmse": (False, rmse_kernel),
    "mae": (False, mae_kernel),
    "r2": (True, r2_kernel),
}

RESAMPLED_METRICS: dict[str, ResampledMetric] = {
    **{
        name: ResampledMetric(name, higher, "classification", kernel)
        for name, (higher, kernel) in _CLASSIFICATION.items()
    },
    **{
        name: ResampledMetric(name, higher, "regression", kernel)
        for name, (higher, kernel) in _REGRESSION.items()
    },
}
"""Every metric the regression gate knows, by name, with its direction."""
