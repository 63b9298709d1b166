"""Held-out metrics of the tabular family.

Classification metrics take integer class codes ``0..K-1`` and a probability matrix with one
column per code; regression metrics take the true and predicted values. Metrics that are
undefined on the given rows (ROC-AUC with a single class present, R² on one row) are left out
rather than reported as NaN, so every value returned is a finite float.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

Task = Literal["classification", "regression"]

PRIMARY_METRIC: dict[str, str] = {"classification": "roc_auc", "regression": "rmse"}
"""The metric shown in progress messages (``accuracy`` stands in when ROC-AUC is undefined)."""


def classification_metrics(codes: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """accuracy, f1, roc_auc and log_loss of ``probabilities`` (n × K) against ``codes``.

    Binary problems score class code 1 as the positive class; multiclass f1 is macro-averaged
    and multiclass ROC-AUC is one-vs-rest, macro-averaged (only when every class is present).
    """
    n_classes = probabilities.shape[1]
    labels = np.arange(n_classes)
    predicted = probabilities.argmax(axis=1)
    out = {"accuracy": float(accuracy_score(codes, predicted))}
    if n_classes == 2:
        out["f1"] = float(f1_score(codes, predicted, pos_label=1, zero_division=0))
    else:
        out["f1"] = float(f1_score(codes, predicted, average="macro", zero_division=0))
    present = np.unique(codes)
    if n_classes == 2 and len(present) == 2:
        out["roc_auc"] = float(roc_auc_score(codes, probabilities[:, 1]))
    elif n_classes > 2 and len(present) == n_classes:
        out["roc_auc"] = float(
            roc_auc_score(codes, probabilities, multi_class="ovr", average="macro", labels=labels)
        )
    out["log_loss"] = float(log_loss(codes, probabilities, labels=labels))
    return _finite(out)


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """rmse, mae and (with two rows or more and a varying truth) r2."""
    out = {
        "rmse": math.sqrt(float(mean_squared_error(truth, predicted))),
        "mae": float(mean_absolute_error(truth, predicted)),
    }
    if len(truth) >= 2 and float(np.var(truth)) > 0:
        out["r2"] = float(r2_score(truth, predicted))
    return _finite(out)


def primary_metric(task: Task, metrics: dict[str, float]) -> tuple[str, float]:
    """The (name, value) to show in a progress message."""
    name = PRIMARY_METRIC[task]
    if name not in metrics:
        name = "accuracy" if task == "classification" else next(iter(metrics))
    return name, metrics[name]


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if math.isfinite(value)}
