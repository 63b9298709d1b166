"""Classification and regression metrics of a model's predictions on labelled rows.

Both functions return plain ``{name: float}`` dicts of finite values: a metric that is undefined
on the given rows (ROC-AUC when only one class is present, R² of a constant truth, MAPE when
every target is zero) is left out rather than reported as NaN — the convention of the tabular
family's own held-out metrics.

The values come from the count-weighted kernels in :mod:`.kernels` at unit weights, so the
regression gate scores champion and candidate with exactly these definitions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.evaluation.kernels import (
    RESAMPLED_METRICS,
    ece_kernel,
    probability_matrix,
)

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "ece",
    "brier",
)
"""Keys :func:`classification_metrics` may return, in order."""


def encode_labels(y_true: Sequence, classes: Sequence) -> np.ndarray:
    """Class codes ``0..K-1`` of ``y_true``, where code ``k`` is ``classes[k]``.

    Raises :class:`InvalidInput` when a label is not among ``classes``.
    """
    codes = pd.Index(list(classes)).get_indexer(pd.Series(np.asarray(y_true, dtype=object)))
    if (codes < 0).any():
        unknown = sorted({str(v) for v in np.asarray(y_true, dtype=object)[codes < 0]})[:10]
        raise InvalidInput("cannot score", [Issue("y_true", f"labels not in classes: {unknown}")])
    return codes.astype(np.intp)


def checked_probabilities(probabilities: np.ndarray, n_rows: int, n_classes: int) -> np.ndarray:
    """``probabilities`` as an ``(n_rows, n_classes)`` matrix of finite values in ``[0, 1]``.

    A 1-D vector is accepted for two classes and read as the probability of the second one.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1 and n_classes == 2:
        p = probability_matrix(p)
    if p.shape != (n_rows, n_classes):
        raise InvalidInput(
            "cannot score",
            [Issue("probabilities", f"shape {p.shape}, expected ({n_rows}, {n_classes})")],
        )
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise InvalidInput("cannot score", [Issue("probabilities", "values outside [0, 1]")])
    return p


def classification_metrics(
    y_true: Sequence, probabilities: np.ndarray, classes: Sequence, *, n_bins: int = 15
) -> dict[str, float]:
    """Scores of class ``probabilities`` (n × K, column ``k`` ↔ ``classes[k]``) against labels.

    * ``accuracy`` — share of rows whose most probable class is the true one;
    * ``precision``, ``recall``, ``f1`` — of the most probable class. Binary problems score the
      positive class ``classes[1]``; multiclass ones take the macro mean over the classes
      present among true or predicted labels. Zero where undefined (no predicted positives);
    * ``roc_auc`` — binary, or one-vs-rest macro for multiclass (over classes present in
      ``y_true``), ties counting one half;
    * ``pr_auc`` — average precision ``Σ (R_t - R_{t-1}) P_t``, macro one-vs-rest for multiclass;
    * ``log_loss`` — mean ``-log p(true class)``, the probability clipped below at 1e-15;
    * ``ece`` — expected calibration error of the top-class probability in ``n_bins``
      equal-width bins: ``Σ_b (n_b / n) · |accuracy_b - confidence_b|``;
    * ``brier`` — binary: mean ``(p(classes[1]) - y)²``; multiclass: mean ``Σ_k (p_k - y_k)²``.

    Raises :class:`InvalidInput` for unknown labels, fewer than two classes, a probability
    matrix of the wrong shape or with values outside ``[0, 1]``, or ``n_bins < 1``.
    """
    if len(classes) < 2:
        raise InvalidInput("cannot score", [Issue("classes", "at least two classes needed")])
    if n_bins < 1:
        raise InvalidInput("cannot score", [Issue("n_bins", "must be at least 1")])
    codes = encode_labels(y_true, classes)
    if len(codes) == 0:
        raise InvalidInput("cannot score", [Issue("y_true", "no rows")])
    p = checked_probabilities(probabilities, len(codes), len(classes))
    unit = np.ones((1, len(codes)))
    out = {}
    for name in CLASSIFICATION_METRICS:
        if name == "ece":
            out[name] = float(ece_kernel(codes, p, n_bins)(unit)[0])
        else:
            out[name] = float(RESAMPLED_METRICS[name].prepare(codes, p)(unit)[0])
    return finite(out)


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """``rmse``, ``mae``, ``mape`` and ``r2`` of predictions against true values.

    ``mape`` is the mean of ``|y - ŷ| / |y|`` over rows whose target is not zero (rows with
    ``y = 0`` have no relative error and are skipped), as a fraction: 0.05 means 5 %. It is left
    out when every target is zero; ``r2`` is left out for fewer than two rows or a constant truth.
    """
    truth, predicted = paired_vectors(y_true, y_pred, "y_pred")
    unit = np.ones((1, len(truth)))
    out = {
        name: float(RESAMPLED_METRICS[name].prepare(truth, predicted)(unit)[0])
        for name in ("rmse", "mae", "r2")
    }
    nonzero = truth != 0
    if nonzero.any():
        out["mape"] = float(np.mean(np.abs(truth - predicted)[nonzero] / np.abs(truth[nonzero])))
    if len(truth) < 2:
        out.pop("r2")
    return finite({name: out[name] for name in ("rmse", "mae", "mape", "r2") if name in out})


def paired_vectors(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray, pred_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Two non-empty, finite, 1-D float vectors of the same length (else :class:`InvalidInput`)."""
    truth = np.asarray(y_true, dtype=np.float64)
    predicted = np.asarray(y_pred, dtype=np.float64)
    issues = []
    if truth.ndim != 1 or len(truth) == 0:
        issues.append(Issue("y_true", "expected a non-empty 1-D sequence"))
    if predicted.shape != truth.shape:
        issues.append(Issue(pred_name, f"shape {predicted.shape}, expected {truth.shape}"))
    if not issues and not (np.isfinite(truth).all() and np.isfinite(predicted).all()):
        issues.append(Issue(pred_name, "values must be finite"))
    if issues:
        raise InvalidInput("cannot score", issues)
    return truth, predicted


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without its NaN or infinite entries."""
    return {name: value for name, value in metrics.items() if math.isfinite(value)}
