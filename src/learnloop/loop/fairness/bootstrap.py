"""Stratified bootstrap of the headline fairness metrics, from per-group confusion counts.

Every headline metric depends on a group's rows only through its four confusion cells
(true positives, false positives, false negatives, true negatives). Resampling a group's ``n``
rows with replacement therefore draws its cells from a multinomial with ``n`` trials and the
group's observed cell fractions, which is exactly the row bootstrap, only without touching the
rows: the cost is ``O(n_boot * groups)`` whatever the data size. Each group is resampled on its
own (stratified), so every replicate keeps the observed group sizes.

The statistics of one replicate follow fairlearn's ``between_groups`` / ``worst_case``
definitions: a gap is the largest minus the smallest group rate, a ratio the smallest over the
largest selection rate. A group whose rate is undefined in a replicate (no positives drawn, for
a true positive rate) is left out of that replicate's gap; a replicate with fewer than two
defined rates gives no value, and the interval is taken over the replicates that do.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

CELLS = ("tp", "fp", "fn", "tn")
"""Order of the confusion cells in the arrays of this module."""

HEADLINE_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
"""Names of the headline metrics, in report order."""


def confusion_cells(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts of ``(tp, fp, fn, tn)`` for binary 0/1 arrays, as an ``int64`` array of 4."""
    return np.array(
        [
            np.sum((y_true == 1) & (y_pred == 1)),
            np.sum((y_true == 0) & (y_pred == 1)),
            np.sum((y_true == 1) & (y_pred == 0)),
            np.sum((y_true == 0) & (y_pred == 0)),
        ],
        dtype=np.int64,
    )


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with ``nan`` where the denominator is zero."""
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _gap(rates: np.ndarray) -> np.ndarray:
    """Row-wise ``max - min`` over the defined (non-nan) rates; ``nan`` with fewer than two."""
    defined = ~np.isnan(rates)
    high = np.where(defined, rates, -np.inf).max(axis=1)
    low = np.where(defined, rates, np.inf).min(axis=1)
    return np.where(defined.sum(axis=1) >= 2, high - low, np.nan)


def headline_statistics(
    cells: np.ndarray, tpr_groups: np.ndarray, fpr_groups: np.ndarray
) -> dict[str, np.ndarray]:
    """The headline metrics of each replicate in ``cells`` (shape ``(replicates, groups, 4)``).

    ``tpr_groups`` / ``fpr_groups`` are boolean masks over the groups whose true / false
    positive rate takes part in the gaps (the groups where it is defined in the observed data).
    Returns one array of length ``replicates`` per metric name; ``nan`` marks a replicate
    where the metric is undefined.
    """
    tp, fp, fn, tn = (cells[..., i].astype(float) for i in range(4))
    selection = _rate(tp + fp, tp + fp + fn + tn)
    tpr = np.where(tpr_groups, _rate(tp, tp + fn), np.nan)
    fpr = np.where(fpr_groups, _rate(fp, fp + tn), np.nan)
    high = selection.max(axis=1)
    ratio = _rate(selection.min(axis=1), high)
    tpr_gap = _gap(tpr)
    fpr_gap = _gap(fpr)
    both = np.vstack([tpr_gap, fpr_gap])
    any_defined = ~np.isnan(both).all(axis=0)
    odds = np.where(any_defined, np.where(np.isnan(both), -np.inf, both).max(axis=0), np.nan)
    return {
        "demographic_parity_difference": high - selection.min(axis=1),
        "demographic_parity_ratio": ratio,
        "equalized_odds_difference": odds,
        "equal_opportunity_difference": tpr_gap,
    }


def bootstrap_intervals(
    cells: np.ndarray,
    tpr_groups: np.ndarray,
    fpr_groups: np.ndarray,
    *,
    n_boot: int,
    alpha: float,
    rng: np.random.Generator,
) -> Mapping[str, tuple[float, float] | None]:
    """Percentile ``1 - alpha`` intervals of the headline metrics, resampling within groups.

    ``cells`` holds the observed ``(tp, fp, fn, tn)`` of each compared group (shape
    ``(groups, 4)``). Returns ``(low, high)`` per metric, or ``None`` where ``n_boot`` is zero
    or no replicate defines the metric.
    """
    if n_boot <= 0:
        return dict.fromkeys(HEADLINE_METRICS)
    sizes = cells.sum(axis=1)
    replicates = np.stack(
        [
            rng.multinomial(int(n), row / n, size=n_boot)
            for row, n in zip(cells, sizes, strict=True)
        ],
        axis=1,
    )
    statistics = headline_statistics(replicates, tpr_groups, fpr_groups)
    intervals: dict[str, tuple[float, float] | None] = {}
    for name in HEADLINE_METRICS:
        values = statistics[name]
        values = values[~np.isnan(values)]
        if values.size == 0:
            intervals[name] = None
            continue
        low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
        intervals[name] = (float(low), float(high))
    return intervals
