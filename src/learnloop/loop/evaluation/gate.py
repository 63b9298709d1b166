"""The regression gate: may a candidate model replace the champion?

The gate scores both models on the same labelled rows and asks a non-inferiority question with
a paired bootstrap (:func:`paired_bootstrap`): is the candidate *at worst* ``max_drop`` worse than
the champion, with confidence ``1 - alpha / 2``? With ``d = metric(candidate) - metric(champion)``
and ``[ci_low, ci_high]`` its ``1 - alpha`` bootstrap interval:

* higher-is-better metrics (accuracy, f1, roc_auc, pr_auc, r2) pass when ``ci_low ≥ -max_drop``;
* lower-is-better metrics (log_loss, ece, brier, rmse, mae) pass when ``ci_high ≤ max_drop``.

``max_drop`` is in the metric's own units (0.005 ROC-AUC, 0.1 RMSE). With the default 0 a
candidate must not be detectably worse; an equal model passes, a clearly worse one fails, and a
noisy comparison on too few rows fails too, because its interval reaches far to the bad side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.evaluation.bootstrap import paired_bootstrap
from learnloop.loop.evaluation.kernels import RESAMPLED_METRICS, ResampledMetric
from learnloop.loop.evaluation.metrics import checked_probabilities, encode_labels

GATE_METRICS = tuple(RESAMPLED_METRICS)
"""Metric names :func:`regression_gate` accepts."""


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate: both scores, the paired interval of their difference, the rule.

    ``difference = candidate - champion``; ``rule`` states the comparison that decided
    ``passed`` with its numbers filled in; ``n`` is the number of rows scored.
    """

    metric: str
    champion: float
    candidate: float
    difference: float
    ci_low: float
    ci_high: float
    passed: bool
    rule: str
    n: int
    higher_is_better: bool


def regression_gate(
    metric: str,
    y_true: Sequence,
    champion_pred: np.ndarray,
    candidate_pred: np.ndarray,
    *,
    higher_is_better: bool | None = None,
    max_drop: float = 0.0,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    classes: Sequence | None = None,
) -> GateResult:
    """Decide whether ``candidate_pred`` is non-inferior to ``champion_pred`` on ``metric``.

    Classification metrics take ``(n, K)`` probability matrices (a 1-D vector is the probability
    of the second class of a binary problem) and labels ``y_true``; column ``k`` is
    ``classes[k]``. Without ``classes``, integer labels in ``0..K-1`` are used as column indices
    and any other labels are sorted (as ``np.unique`` sorts them) to give the column order.
    Regression metrics take 1-D predictions. ``higher_is_better`` may be passed as a check of
    the metric's known direction; a contradicting value raises.

    Raises :class:`InvalidInput` for an unknown metric, a contradicting direction, a negative
    ``max_drop``, or inputs that :func:`paired_bootstrap` rejects.
    """
    spec = RESAMPLED_METRICS.get(metric)
    if spec is None:
        raise InvalidInput(
            "cannot gate", [Issue("metric", f"unknown {metric!r}; one of {list(GATE_METRICS)}")]
        )
    if higher_is_better is not None and higher_is_better != spec.higher_is_better:
        direction = "higher" if spec.higher_is_better else "lower"
        raise InvalidInput(
            "cannot gate", [Issue("higher_is_better", f"{metric} is {direction}-is-better")]
        )
    if not max_drop >= 0:
        raise InvalidInput("cannot gate", [Issue("max_drop", "must be ≥ 0")])
    y, champion, candidate = _gate_inputs(spec, y_true, champion_pred, candidate_pred, classes)
    difference, low, high = paired_bootstrap(
        spec, y, champion, candidate, n_boot=n_boot, seed=seed, alpha=alpha
    )
    if spec.higher_is_better:
        passed = low >= -max_drop
        rule = f"higher is better: pass iff ci_low >= -max_drop ({low:.6g} >= {0.0 - max_drop:.6g})"
    else:
        passed = high <= max_drop
        rule = f"lower is better: pass iff ci_high <= max_drop ({high:.6g} <= {max_drop:.6g})"
    return GateResult(
        metric=metric,
        champion=spec(y, champion),
        candidate=spec(y, candidate),
        difference=difference,
        ci_low=low,
        ci_high=high,
        passed=bool(passed),
        rule=f"{metric}, {1 - alpha:.0%} paired bootstrap CI of candidate - champion; {rule}",
        n=len(y),
        higher_is_better=spec.higher_is_better,
    )


def _gate_inputs(
    spec: ResampledMetric,
    y_true: Sequence,
    champion_pred: np.ndarray,
    candidate_pred: np.ndarray,
    classes: Sequence | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y, champion, candidate)`` validated: class codes and probability matrices, or floats."""
    if spec.task == "regression":
        y = np.asarray(y_true, dtype=np.float64)
        preds = [np.asarray(p, dtype=np.float64) for p in (champion_pred, candidate_pred)]
        for name, p in zip(("champion_pred", "candidate_pred"), preds, strict=True):
            if p.shape != y.shape or not np.isfinite(p).all():
                raise InvalidInput("cannot gate", [Issue(name, f"expected {len(y)} finite values")])
        return y, preds[0], preds[1]
    champion_pred = np.asarray(champion_pred, dtype=np.float64)
    n_classes = 2 if champion_pred.ndim == 1 else champion_pred.shape[1]
    codes = _codes(y_true, n_classes, classes)
    return (
        codes,
        checked_probabilities(champion_pred, len(codes), n_classes),
        checked_probabilities(np.asarray(candidate_pred), len(codes), n_classes),
    )


def _codes(y_true: Sequence, n_classes: int, classes: Sequence | None) -> np.ndarray:
    if classes is not None:
        if len(classes) != n_classes:
            raise InvalidInput(
                "cannot gate", [Issue("classes", f"{len(classes)} classes, {n_classes} columns")]
            )
        return encode_labels(y_true, classes)
    y = np.asarray(y_true)
    if y.dtype.kind in "biu" and len(y) and y.min() >= 0 and y.max() < n_classes:
        return y.astype(np.intp)
    labels = np.unique(y)
    if len(labels) != n_classes:
        raise InvalidInput(
            "cannot gate",
            [
                Issue(
                    "classes", f"{len(labels)} labels in y_true, {n_classes} columns: pass classes"
                )
            ],
        )
    return np.searchsorted(labels, y).astype(np.intp)
