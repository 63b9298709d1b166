"""Rare-class augmentation: :func:`augment_rare`, by copula samples or SMOTE interpolation."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from learnloop.loop.synthetic.copula import GaussianCopulaSynthesizer
from learnloop.loop.synthetic.marginals import (
    SyntheticDataError,
    _as_float,
    _column_kind,
    _datetime_step,
    _decimals,
    _fit_id,
    _ids,
    _looks_like_id,
    _Marginal,
    _python,
)

SYNTHETIC_FLAG = "_synthetic"


def _additions(counts: pd.Series, rows: int, fraction: float) -> dict[Any, int]:
    """Rows to add per class so that every class is at least ``fraction`` of the new total."""
    added = dict.fromkeys(counts.index, 0)
    for _ in range(10_000):
        total = rows + sum(added.values())
        floor = fraction * total - 1e-9
        short = {c: n + added[c] for c, n in counts.items() if n + added[c] < floor}
        if not short:
            return {c: k for c, k in added.items() if k}
        # Adding k_c rows to each short class: solve for the total those additions imply.
        held = sum(n + added[c] for c, n in counts.items() if c not in short)
        held += rows - int(counts.sum())
        denominator = 1.0 - len(short) * fraction
        if denominator <= 0:
            break
        goal = held / denominator
        for c, have in short.items():
            added[c] += max(1, math.ceil(fraction * goal - have))
    raise SyntheticDataError(
        f"min_fraction={fraction} cannot hold for all {len(counts)} classes at once"
    )


def _smote_rows(
    rows: pd.DataFrame,
    count: int,
    numeric: Sequence[str],
    spread: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """SMOTE: each new row lies between a base row and one of its 5 nearest neighbours."""
    from sklearn.neighbors import NearestNeighbors

    base_rows = rng.integers(0, len(rows), size=count)
    new = rows.iloc[base_rows].reset_index(drop=True)
    if not numeric:
        return new
    x = np.column_stack([_as_float(rows[c]) for c in numeric])
    filled = np.where(np.isnan(x), np.nanmedian(x, axis=0), x)
    filled = np.nan_to_num(filled) / spread
    k = min(5, len(rows) - 1)
    _, found = NearestNeighbors(n_neighbors=k + 1).fit(filled).kneighbors(filled)
    neighbours = np.array([row[row != i][:k] for i, row in enumerate(found)])
    partner = neighbours[base_rows, rng.integers(0, k, size=count)]
    share = rng.random(count)
    for j, name in enumerate(numeric):
        start, end = x[base_rows, j], x[partner, j]
        values = np.where(np.isnan(end), start, start + share * (end - start))
        series = rows[name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            marginal = _Marginal(name=name, kind="datetime", dtype=str(series.dtype))
            marginal.step = _datetime_step(_as_float(series.dropna()))
            marginal.timezone = str(series.dt.tz) if series.dt.tz is not None else None
            values = np.round(values / marginal.step) * marginal.step
        else:
            marginal = _Marginal(name=name, kind="numeric", dtype=str(series.dtype))
            integer = pd.api.types.is_integer_dtype(series.dtype)
            decimals = 0 if integer else _decimals(_as_float(series.dropna()))
            if decimals is not None:
                values = np.round(values, decimals)
        new[name] = marginal.restore(values, np.isnan(values))
    return new


def augment_rare(
    frame: pd.DataFrame,
    target: str,
    *,
    min_fraction: float = 0.2,
    seed: int = 0,
    method: Literal["copula", "smote"] = "copula",
    id_columns: Collection[str] = (),
) -> pd.DataFrame:
    """Top up every class of ``target`` below ``min_fraction`` of the rows with synthetic rows.

    Each short class grows until it is at least ``min_fraction`` of the *new* total.
    ``"copula"`` fits a :class:`GaussianCopulaSynthesizer` on that class's rows alone (column
    kinds taken from the whole frame) and samples; ``"smote"`` interpolates the numeric and
    datetime columns between a row of the class and one of its 5 nearest same-class neighbours
    (distances on columns scaled by their standard deviation in the whole frame) and copies
    every other column from the base row. ``id_columns`` get fresh unique ids. Returns the
    original rows followed by the new ones (a fresh ``RangeIndex``) with a bool ``_synthetic``
    column (False for the original rows, or their existing ``_synthetic`` values). Rows with
    a missing target are kept and counted but never augmented.
    """
    if target not in frame.columns:
        raise SyntheticDataError(f"unknown target column {target!r}")
    if not 0.0 < min_fraction <= 0.5:
        raise SyntheticDataError(f"min_fraction must be in (0, 0.5], got {min_fraction}")
    if method not in ("copula", "smote"):
        raise SyntheticDataError(f"unknown method {method!r}; use 'copula' or 'smote'")
    for name in id_columns:
        if name not in frame.columns:
            raise SyntheticDataError(f"unknown id column {name!r}")
    id_columns = [*id_columns, *(c for c in frame.columns if _looks_like_id(frame[c]))]
    id_columns = list(dict.fromkeys(id_columns))
    original = frame.copy()
    if SYNTHETIC_FLAG not in original.columns:
        original[SYNTHETIC_FLAG] = False
    data = original.drop(columns=SYNTHETIC_FLAG)
    counts = data[target].value_counts()
    additions = _additions(counts, len(data), min_fraction)
    if method == "smote":
        for label in additions:
            if counts[label] < 2:
                raise SyntheticDataError(
                    f"class {_python(label)!r} of {target!r} has {counts[label]} row; "
                    "smote needs at least 2"
                )
    rng = np.random.default_rng(seed)
    features = [c for c in data.columns if c not in id_columns and c != target]
    kinds = {c: _column_kind(data[c]) for c in features}
    numeric = [c for c in features if kinds[c] in ("numeric", "datetime")]
    spread = np.array([np.nanstd(_as_float(data[c])) or 1.0 for c in numeric])
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    overrides: dict[str, Literal["numeric", "categorical"]] = {
        c: "categorical" if kinds[c] == "categorical" else "numeric"
        for c in features
        if kinds[c] in ("numeric", "categorical")
    }
    parts = []
    for index, (label, count) in enumerate(additions.items()):
        rows = data[data[target] == label]
        if method == "smote":
            parts.append(_smote_rows(rows, count, numeric, spread, rng))
        else:
            synthesizer = GaussianCopulaSynthesizer(
                seed=seed + index, id_columns=id_columns, column_kinds=overrides
            )
            parts.append(synthesizer.fit(rows).sample(count))
    if not parts:
        return original.reset_index(drop=True)
    new = pd.concat(parts, ignore_index=True)
    for name in id_columns:
        new[name] = _ids(_fit_id(name, data[name]), len(new)).to_numpy()
    new[SYNTHETIC_FLAG] = True
    result = pd.concat([original, new[original.columns]], ignore_index=True)
    result[SYNTHETIC_FLAG] = result[SYNTHETIC_FLAG].astype(bool)
    return result
