"""Hierarchies applied to one column: labels, codes and information loss per level."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from learnloop.loop.privacy.anonymity.hierarchy import AnonymizationError, Hierarchy

_TOP = "*"
_MISSING = "NaN"
_MAX_INTERVAL_LEVELS = 64


@dataclass
class _Ladder:
    """One QI's generalizations, stored per distinct value (``codes0`` maps rows to them)."""

    name: str
    kind: str
    max_level: int
    codes0: NDArray[Any]  # row -> distinct value index
    labels: list[NDArray[Any]]  # level -> label per distinct value
    codes: list[NDArray[Any]]  # level -> label code per distinct value
    cards: list[int]  # level -> number of labels
    ncp: list[NDArray[Any]]  # level -> NCP per distinct value
    descriptions: list[str]

    def row_labels(self, level: int) -> NDArray[Any]:
        labels: NDArray[Any] = self.labels[level][self.codes0]
        return labels


def _factorize(series: pd.Series) -> NDArray[Any]:
    codes, _ = pd.factorize(series, use_na_sentinel=False)
    out: NDArray[Any] = np.asarray(codes, dtype=np.int64)
    return out


def _build_ladder(name: str, series: pd.Series, hierarchy: Hierarchy) -> _Ladder:
    codes0, uniques = pd.factorize(series, use_na_sentinel=False)
    missing = np.asarray(pd.isna(uniques), dtype=bool)
    builders: dict[str, Callable[..., tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]]] = {
        "numeric": _numeric_levels,
        "categorical": _categorical_levels,
        "date": _date_levels,
        "prefix": _prefix_levels,
    }
    try:
        labels, ncp, descriptions = builders[hierarchy.kind](uniques, missing, hierarchy)
    except (TypeError, ValueError) as e:
        raise AnonymizationError(f"quasi_identifiers.{name}", f"column {name!r}: {e}") from e
    codes, cards = [], []
    for level_labels in labels:
        level_codes, level_uniques = pd.factorize(level_labels)
        codes.append(np.asarray(level_codes, dtype=np.int64))
        cards.append(len(level_uniques))
    return _Ladder(
        name=name,
        kind=hierarchy.kind,
        max_level=len(labels) - 1,
        codes0=np.asarray(codes0, dtype=np.int64),
        labels=labels,
        codes=codes,
        cards=cards,
        ncp=ncp,
        descriptions=descriptions,
    )


def _numeric_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    numbers = pd.to_numeric(pd.Series(np.asarray(uniques, dtype=object)), errors="raise")
    values = numbers.to_numpy(dtype=float)
    finite = values[~missing]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    spread = high - low
    base = float(hierarchy.base_width or 1.0)
    top = hierarchy.max_level
    if top is None:
        top = 1
        if finite.size:
            while top < _MAX_INTERVAL_LEVELS:
                width = base * 2 ** (top - 1)
                if math.floor(low / width + 1e-9) == math.floor(high / width + 1e-9):
                    break
                top += 1
            top += 1
    zeros = np.zeros(len(values))
    labels = [_text(np.array([_number(v) for v in values], dtype=object), missing)]
    ncp = [zeros]
    descriptions = ["original values"]
    for level in range(1, top):
        width = base * 2 ** (level - 1)
        starts = np.floor(np.where(missing, 0.0, values) / width + 1e-9)
        text = np.array(
            [f"[{_number(s * width)}, {_number((s + 1) * width)})" for s in starts], dtype=object
        )
        labels.append(_text(text, missing))
        loss = min(width / spread, 1.0) if spread > 0 else 0.0
        ncp.append(np.where(missing, 0.0, loss))
        descriptions.append(f"intervals of width {_number(width)}")
    labels.append(np.full(len(values), _TOP, dtype=object))
    ncp.append(np.ones(len(values)))
    descriptions.append("suppressed (*)")
    return labels, ncp, descriptions


def _categorical_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    original = _text(np.array([str(v) for v in uniques], dtype=object), missing)
    top = hierarchy.max_level or len(hierarchy.groups) + 1
    labels = [original]
    descriptions = ["original values"]
    for level in range(1, top):
        mapping = hierarchy.groups[level - 1]
        previous = labels[-1]
        grouped = []
        for i, (before, raw) in enumerate(zip(previous, original, strict=True)):
            if missing[i]:
                grouped.append(_MISSING)
                continue
            group = mapping.get(before, mapping.get(raw))
            if group is None:
                raise ValueError(f"value {before!r} has no group at level {level}")
            grouped.append(str(group))
        labels.append(np.array(grouped, dtype=object))
        descriptions.append(f"groups level {level}")
    labels.append(np.full(len(original), _TOP, dtype=object))
    descriptions.append("suppressed (*)")
    return labels, _group_ncp(labels, missing), descriptions


def _date_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    stamps = pd.to_datetime(pd.Series(np.asarray(uniques, dtype=object)), errors="raise")
    day = np.array(
        [
            "" if pd.isna(t) else (t.date().isoformat() if t == t.normalize() else t.isoformat())
            for t in stamps
        ],
        dtype=object,
    )
    month = np.array(["" if pd.isna(t) else t.strftime("%Y-%m") for t in stamps], dtype=object)
    year = np.array(["" if pd.isna(t) else t.strftime("%Y") for t in stamps], dtype=object)
    top = hierarchy.max_level or 3
    labels = [_text(day, missing), _text(month, missing), _text(year, missing)][:top]
    labels.append(np.full(len(day), _TOP, dtype=object))
    descriptions = ["original values", "month", "year"][:top] + ["suppressed (*)"]
    return labels, _group_ncp(labels, missing), descriptions


def _prefix_levels(
    uniques: Any, missing: NDArray[Any], hierarchy: Hierarchy
) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[str]]:
    text = [str(v) for v in uniques]
    longest = max((len(t) for t, m in zip(text, missing, strict=True) if not m), default=1)
    top = hierarchy.max_level or max(longest, 1)
    labels = [_text(np.array(text, dtype=object), missing)]
    descriptions = ["original values"]
    for level in range(1, top):
        cut = [t[: max(len(t) - level, 0)] + _TOP * min(level, len(t)) for t in text]
        labels.append(_text(np.array(cut, dtype=object), missing))
        descriptions.append(f"last {level} characters masked")
    labels.append(np.full(len(text), _TOP * longest, dtype=object))
    descriptions.append("suppressed (*)")
    return labels, _group_ncp(labels, missing), descriptions


def _text(labels: NDArray[Any], missing: NDArray[Any]) -> NDArray[Any]:
    out = labels.astype(object)
    out[missing] = _MISSING
    return out


def _group_ncp(labels: list[NDArray[Any]], missing: NDArray[Any]) -> list[NDArray[Any]]:
    """Per level, ``(g - 1) / (d - 1)``: ``g`` of the ``d`` distinct present values share a label.

    Missing values lose nothing until the top level, where every row costs 1.
    """
    present = int((~missing).sum())
    out = []
    for level in labels[:-1]:
        if present <= 1:
            out.append(np.zeros(len(level)))
            continue
        sizes = pd.Series(level[~missing]).value_counts()
        shared = pd.Series(level).map(sizes).fillna(1).to_numpy(dtype=float)
        loss = (shared - 1.0) / (present - 1.0)
        loss[missing] = 0.0
        out.append(loss)
    out.append(np.ones(len(labels[-1])))
    return out


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"
