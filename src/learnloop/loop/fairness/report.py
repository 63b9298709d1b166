"""The fairness report of one set of binary predictions, and the bounds check built on it."""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    false_positive_rate_difference,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from learnloop.core.errors import InvalidInput, Issue
from learnloop.loop.fairness.bootstrap import HEADLINE_METRICS, bootstrap_intervals, confusion_cells

GROUP_METRICS = {
    "count": count,
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "accuracy": accuracy_score,
}
"""The per-group metrics, computed by one :class:`fairlearn.metrics.MetricFrame` per attribute."""

MISSING = "(missing)"
"""Group label of rows whose sensitive value is missing; such rows form a group of their own."""

JOIN = " & "
"""Separator of the column names of an intersection and of its group labels."""

TOLERANCE = 1e-12
"""Slack of :func:`check_bounds` comparisons, so that a gap of exactly the bound passes."""


@dataclass(frozen=True)
class FairnessConfig:
    """How :func:`fairness_report` groups rows and estimates uncertainty."""

    min_group_size: int = 30
    """Groups with fewer rows are reported with ``too_small: True`` and left out of the
    headline metrics (never dropped from the report)."""
    n_boot: int = 500
    """Bootstrap replicates per attribute; ``0`` skips the intervals."""
    alpha: float = 0.05
    """The intervals are percentile ``1 - alpha`` intervals."""
    seed: int = 0
    """Seed of the bootstrap; with the attribute's name it fixes that attribute's replicates."""
    intersectional: bool = True
    """Also report every combination of two or more sensitive columns."""

    def __post_init__(self) -> None:
        issues = []
        if self.min_group_size < 1:
            issues.append(Issue("min_group_size", "must be at least 1"))
        if self.n_boot < 0:
            issues.append(Issue("n_boot", "must not be negative"))
        if not 0 < self.alpha < 1:
            issues.append(Issue("alpha", "must be strictly between 0 and 1"))
        if issues:
            raise InvalidInput("invalid fairness config", issues)


def fairness_report(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    sensitive: pd.DataFrame,
    *,
    positive: Any = 1,
    config: FairnessConfig = FairnessConfig(),
) -> dict[str, Any]:
    """Group metrics and headline fairness gaps of binary predictions, per sensitive attribute.

    A label equal to ``positive`` counts as positive, any other label as negative. Each column
    of ``sensitive`` (row-aligned with the labels; its index is ignored) is an attribute, and
    with ``config.intersectional`` so is every combination of two or more columns. The result
    is plain JSON (``NaN`` becomes ``None``); its layout is described in ``docs/fairness.md``.
    Raises :class:`InvalidInput` when the lengths disagree or there are no rows or columns.
    """
    truth, predicted, frame = _validate(y_true, y_pred, sensitive, positive)
    overall = MetricFrame(
        metrics=GROUP_METRICS, y_true=truth, y_pred=predicted, sensitive_features=frame.iloc[:, 0]
    ).overall
    overall_stats = _group_stats(overall, int(truth.sum()), int((truth == 0).sum()))
    attributes: dict[str, Any] = {}
    for columns in _attribute_sets(list(frame.columns), config.intersectional):
        name = JOIN.join(columns)
        attributes[name] = _attribute_report(name, columns, truth, predicted, frame, config)
    small = [
        {"attribute": name, "group": group, "count": attributes[name]["groups"][group]["count"]}
        for name in attributes
        for group in attributes[name]["small_groups"]
    ]
    notes = [f"{name}: {note}" for name in attributes for note in attributes[name]["notes"]]
    return {
        "positive": positive.item() if isinstance(positive, np.generic) else positive,
        "count": len(truth),
        "config": asdict(config),
        "overall": {key: value for key, value in overall_stats.items() if key != "too_small"},
        "attributes": attributes,
        "small_groups": small,
        "notes": notes,
    }


def check_bounds(
    report: Mapping[str, Any],
    bounds: Mapping[str, float],
    *,
    attributes: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """One verdict per (attribute, metric) of ``report`` for each bound in ``bounds``.

    Differences must be at most their bound and ``demographic_parity_ratio`` at least its bound
    (``direction`` says which). ``passed`` judges the point value; ``strict_passed`` judges the
    unfavourable end of the interval (``ci_high`` for a difference, ``ci_low`` for the ratio).
    Either is ``None`` when its number is missing (fewer than two comparable groups, or no
    bootstrap), which a gate of the form ``all(v["passed"] for v in verdicts)`` treats as a
    failure. ``attributes`` limits the check to those attribute names (intersections are named
    ``"a & b"``). Raises :class:`InvalidInput` for an unknown metric name.
    """
    unknown = [name for name in bounds if name not in HEADLINE_METRICS]
    if unknown:
        issues = [
            Issue(f"bounds.{name}", f"not one of {list(HEADLINE_METRICS)}") for name in unknown
        ]
        raise InvalidInput("unknown fairness metric", issues)
    verdicts = []
    for attribute, entry in report["attributes"].items():
        if attributes is not None and attribute not in attributes:
            continue
        for metric, bound in bounds.items():
            stats = entry["metrics"][metric]
            at_least = metric == "demographic_parity_ratio"
            edge = stats["ci_low"] if at_least else stats["ci_high"]
            verdicts.append(
                {
                    "attribute": attribute,
                    "metric": metric,
                    "value": stats["value"],
                    "bound": float(bound),
                    "ci_low": stats["ci_low"],
                    "ci_high": stats["ci_high"],
                    "direction": "at_least" if at_least else "at_most",
                    "passed": _within(stats["value"], bound, at_least),
                    "strict_passed": _within(edge, bound, at_least),
                }
            )
    return verdicts


def _within(value: float | None, bound: float, at_least: bool) -> bool | None:
    if value is None:
        return None
    return value >= bound - TOLERANCE if at_least else value <= bound + TOLERANCE


def _validate(
    y_true: Sequence[Any], y_pred: Sequence[Any], sensitive: pd.DataFrame, positive: Any
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Binary 0/1 labels and the sensitive columns as strings (missing values labelled)."""
    truth = (np.asarray(y_true) == positive).astype(np.int64).ravel()
    predicted = (np.asarray(y_pred) == positive).astype(np.int64).ravel()
    issues = []
    if not isinstance(sensitive, pd.DataFrame) or sensitive.shape[1] == 0:
        issues.append(Issue("sensitive", "must be a DataFrame with at least one column"))
    elif len(sensitive) != len(truth) or len(predicted) != len(truth):
        sizes = f"{len(truth)} labels, {len(predicted)} predictions, {len(sensitive)} rows"
        issues.append(Issue("sensitive", f"lengths disagree: {sizes}"))
    elif len(truth) == 0:
        issues.append(Issue("y_true", "no rows"))
    elif sensitive.columns.duplicated().any():
        issues.append(Issue("sensitive", "column names must be unique"))
    if issues:
        raise InvalidInput("invalid fairness input", issues)
    frame = sensitive.reset_index(drop=True)
    frame.columns = [str(column) for column in frame.columns]
    frame = frame.apply(lambda column: column.map(_label))
    return truth, predicted, frame


def _label(value: Any) -> str:
    return (
        MISSING if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    )


def _attribute_sets(columns: list[str], intersectional: bool) -> list[tuple[str, ...]]:
    """Each column alone, then (if asked) every combination of two or more, smallest first."""
    sizes = range(1, len(columns) + 1) if intersectional else range(1, 2)
    return [combo for size in sizes for combo in itertools.combinations(columns, size)]


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _group_stats(row: pd.Series, positives: int, negatives: int) -> dict[str, Any]:
    """JSON stats of one group; a rate whose denominator is zero is ``None``."""
    return {
        "count": int(row["count"]),
        "positives": positives,
        "negatives": negatives,
        "selection_rate": _number(row["selection_rate"]),
        "tpr": _number(row["tpr"]) if positives else None,
        "fpr": _number(row["fpr"]) if negatives else None,
        "accuracy": _number(row["accuracy"]),
        "too_small": False,
    }


def _attribute_report(
    name: str,
    columns: tuple[str, ...],
    truth: np.ndarray,
    predicted: np.ndarray,
    frame: pd.DataFrame,
    config: FairnessConfig,
) -> dict[str, Any]:
    """Groups, small groups, headline metrics with intervals, and notes of one attribute."""
    labels = frame[columns[0]]
    for column in columns[1:]:
        labels = labels + JOIN + frame[column]
    labels = labels.rename(name)
    by_group = MetricFrame(
        metrics=GROUP_METRICS, y_true=truth, y_pred=predicted, sensitive_features=labels
    ).by_group
    positives = pd.Series(truth).groupby(labels).sum()
    values = frame[list(columns)].groupby(labels).first()
    groups: dict[str, dict[str, Any]] = {}
    for group, row in by_group.iterrows():
        stats = _group_stats(row, int(positives[group]), int(row["count"] - positives[group]))
        stats["too_small"] = stats["count"] < config.min_group_size
        groups[str(group)] = {"values": values.loc[group].to_dict(), **stats}
    small = [group for group, stats in groups.items() if stats["too_small"]]
    compared = [group for group, stats in groups.items() if not stats["too_small"]]
    notes = [
        f"group {group!r} has {groups[group]['count']} rows (< {config.min_group_size}); "
        "reported but left out of the headline metrics"
        for group in small
    ]
    for group in compared:
        for rate, kind in (("tpr", "positives"), ("fpr", "negatives")):
            if groups[group][rate] is None:
                notes.append(f"group {group!r} has no actual {kind}: {rate} undefined, left out")
    rng = np.random.default_rng([config.seed, zlib.crc32(name.encode())])
    metrics = _headline(truth, predicted, labels.to_numpy(), compared, groups, config, rng, notes)
    return {
        "columns": list(columns),
        "groups": groups,
        "small_groups": small,
        "compared_groups": compared,
        "metrics": metrics,
        "notes": notes,
    }


def _headline(
    truth: np.ndarray,
    predicted: np.ndarray,
    labels: np.ndarray,
    compared: list[str],
    groups: Mapping[str, Mapping[str, Any]],
    config: FairnessConfig,
    rng: np.random.Generator,
    notes: list[str],
) -> dict[str, dict[str, float | None]]:
    """Fairlearn's headline metrics over the compared groups, with bootstrap intervals."""
    empty: dict[str, dict[str, float | None]] = {
        metric: {"value": None, "ci_low": None, "ci_high": None} for metric in HEADLINE_METRICS
    }
    if len(compared) < 2:
        notes.append(f"fewer than two groups with at least {config.min_group_size} rows")
        return empty
    with_tpr = [group for group in compared if groups[group]["tpr"] is not None]
    with_fpr = [group for group in compared if groups[group]["fpr"] is not None]

    def over(chosen: list[str], metric: Any) -> float | None:
        if len(chosen) < 2:
            return None
        rows = np.isin(labels, chosen)
        return _number(metric(truth[rows], predicted[rows], sensitive_features=labels[rows]))

    tpr_gap = over(with_tpr, equal_opportunity_difference)
    if len(with_tpr) == len(with_fpr) == len(compared):
        odds = over(compared, equalized_odds_difference)
    else:
        gaps = [
            g for g in (tpr_gap, over(with_fpr, false_positive_rate_difference)) if g is not None
        ]
        odds = max(gaps) if gaps else None
    values = {
        "demographic_parity_difference": over(compared, demographic_parity_difference),
        "demographic_parity_ratio": over(compared, demographic_parity_ratio),
        "equalized_odds_difference": odds,
        "equal_opportunity_difference": tpr_gap,
    }
    if values["demographic_parity_ratio"] is None:
        notes.append(
            "no compared group has a positive prediction: demographic parity ratio undefined"
        )
    cells = np.stack(
        [confusion_cells(truth[labels == g], predicted[labels == g]) for g in compared]
    )
    intervals = bootstrap_intervals(
        cells,
        np.isin(compared, with_tpr),
        np.isin(compared, with_fpr),
        n_boot=config.n_boot,
        alpha=config.alpha,
        rng=rng,
    )
    for metric, value in values.items():
        interval = intervals[metric] if value is not None else None
        low, high = interval if interval is not None else (None, None)
        empty[metric] = {"value": value, "ci_low": low, "ci_high": high}
    return empty
