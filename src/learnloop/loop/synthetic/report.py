"""How closely synthetic rows follow real ones: :func:`fidelity_report` and its measures.

Column shapes (KS, total variation), pairwise correlations and Cramér's V, a real-vs-synthetic
discriminator, train-synthetic/test-real utility and privacy checks; the models are
scikit-learn's, imported when a report is made.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from learnloop.loop.synthetic.augment import SYNTHETIC_FLAG
from learnloop.loop.synthetic.marginals import (
    SyntheticDataError,
    _as_float,
    _column_kind,
    _looks_like_id,
)


def _report_kinds(
    real: pd.DataFrame, id_columns: Collection[str]
) -> tuple[dict[str, Literal["numeric", "categorical"]], dict[str, str]]:
    kinds: dict[str, Literal["numeric", "categorical"]] = {}
    skipped: dict[str, str] = {}
    for name in real.columns:
        series = real[name]
        kind = _column_kind(series)
        if name in id_columns or name == SYNTHETIC_FLAG:
            skipped[name] = "id column" if name in id_columns else "augmentation marker"
        elif kind == "empty":
            skipped[name] = "empty in the real data"
        elif _looks_like_id(series):
            skipped[name] = "every real value is distinct (an identifier)"
        else:
            kinds[name] = "categorical" if kind == "categorical" else "numeric"
    return kinds, skipped


def _distribution(series: pd.Series) -> pd.Series:
    values = series.dropna()
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        values = values.astype(float)
    return values.astype(str).value_counts(normalize=True)


def _tvd(real: pd.Series, synthetic: pd.Series) -> float:
    p, q = _distribution(real), _distribution(synthetic)
    if p.empty or q.empty:
        return 1.0 if p.empty != q.empty else 0.0
    p, q = p.align(q, fill_value=0.0)
    return float(0.5 * np.abs(p - q).sum())


def _cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a.astype(str).where(a.notna()), b.astype(str).where(b.notna()))
    if min(table.shape) < 2:
        return 0.0
    chi2 = stats.chi2_contingency(table.to_numpy(), correction=False)[0]
    return float(math.sqrt(chi2 / (table.to_numpy().sum() * (min(table.shape) - 1))))


def _encode(frames: Sequence[pd.DataFrame], kinds: Mapping[str, str]) -> list[np.ndarray]:
    """Consistent float matrices for a model: numbers as is, categories as shared codes."""
    stacked = pd.concat([f[list(kinds)] for f in frames], ignore_index=True)
    columns = []
    for name, kind in kinds.items():
        if kind == "numeric":
            columns.append(_as_float(stacked[name]))
        else:
            codes, _ = pd.factorize(_distribution_keys(stacked[name]), sort=True)
            columns.append(np.where(codes < 0, np.nan, codes).astype(float))
    matrix = np.column_stack(columns) if columns else np.zeros((len(stacked), 0))
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    return [matrix[bounds[i] : bounds[i + 1]] for i in range(len(frames))]


def _distribution_keys(series: pd.Series) -> pd.Series:
    """Category labels that compare equal across dtypes (1, 1.0 and "1.0" agree)."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        return series.astype(float).astype(str).where(series.notna())
    return series.astype(str).where(series.notna())


def _model(classification: bool, categorical: list[bool], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    mask = categorical if any(categorical) else None
    if classification:
        return HistGradientBoostingClassifier(categorical_features=mask, random_state=seed)
    return HistGradientBoostingRegressor(categorical_features=mask, random_state=seed)


def _single_thread() -> Any:
    """One OpenMP thread for the report's small models: faster than contending for cores."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _categorical_mask(kinds: Mapping[str, str], matrix: np.ndarray) -> list[bool]:
    """Categorical columns for the tree model (those with more codes than bins stay numeric)."""
    mask = []
    for j, kind in enumerate(kinds.values()):
        top = np.nanmax(matrix[:, j], initial=0.0) if len(matrix) else 0.0
        mask.append(kind == "categorical" and top < 250)
    return mask


def _discriminator_auc(
    real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str], seed: int
) -> float | None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rows = min(len(real), len(synthetic), 5000)
    if rows < 10 or not kinds:
        return None
    real_rows = real.sample(rows, random_state=seed)
    synthetic_rows = synthetic.sample(rows, random_state=seed)
    x_real, x_synthetic = _encode([real_rows, synthetic_rows], kinds)
    x = np.vstack([x_real, x_synthetic])
    y = np.r_[np.zeros(rows), np.ones(rows)]
    model = _model(True, _categorical_mask(kinds, x), seed)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    with _single_thread():
        proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, proba))


def _utility(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    test: pd.DataFrame,
    target: str,
    kinds: Mapping[str, str],
    seed: int,
) -> dict[str, Any]:
    """Train on synthetic / on real, test both on the same real rows."""
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    features = {k: v for k, v in kinds.items() if k != target}
    classification = kinds[target] == "categorical"
    frames = [f[f[target].notna()] for f in (train, synthetic, test)]
    matrices = _encode(frames, features)
    stacked = pd.concat([f[target] for f in frames], ignore_index=True)
    if classification:
        labels, classes = pd.factorize(_distribution_keys(stacked), sort=True)
        metric = "roc_auc" if len(classes) == 2 else "accuracy"
    else:
        labels, metric = _as_float(stacked), "r2"
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    ys = [labels[bounds[i] : bounds[i + 1]] for i in range(3)]
    mask = _categorical_mask(features, np.vstack(matrices))
    x_test, y_test = matrices[2], ys[2]

    def score(x_train: np.ndarray, y_train: np.ndarray) -> float | None:
        if len(y_test) == 0 or len(y_train) == 0:
            return None
        if classification and len(np.unique(y_train)) < 2:
            constant = np.full(len(y_test), y_train[0])
            prediction = np.zeros(len(y_test)) if metric == "roc_auc" else constant
        else:
            with _single_thread():
                model = _model(classification, mask, seed).fit(x_train, y_train)
            if metric == "roc_auc":
                prediction = model.predict_proba(x_test)[:, list(model.classes_).index(1)]
            else:
                prediction = model.predict(x_test)
        if metric == "roc_auc":
            if len(np.unique(y_test)) < 2:
                return None
            return float(roc_auc_score(y_test == 1, prediction))
        if metric == "accuracy":
            return float(accuracy_score(y_test, prediction))
        return float(r2_score(y_test, prediction))

    return {
        "train_synthetic_test_real": _round(score(matrices[1], ys[1])),
        "train_real_test_real": _round(score(matrices[0], ys[0])),
        "metric": metric,
        "test_rows": int(len(y_test)),
    }


def _privacy(
    real: pd.DataFrame, synthetic: pd.DataFrame, kinds: Mapping[str, str], seed: int
) -> dict[str, Any]:
    from sklearn.neighbors import NearestNeighbors

    keys = list(kinds)

    def row_hashes(frame: pd.DataFrame) -> pd.Series:
        normalized = pd.DataFrame({k: _distribution_keys(frame[k]).fillna("<NA>") for k in keys})
        return pd.util.hash_pandas_object(normalized, index=False)

    copies = int(row_hashes(synthetic).isin(set(row_hashes(real))).sum()) if keys else 0
    result: dict[str, Any] = {
        "exact_copies": copies,
        "exact_copy_fraction": _round(copies / len(synthetic)) if len(synthetic) else None,
        "dcr_median": None,
        "dcr_real_median": None,
    }
    numeric = [k for k, v in kinds.items() if v == "numeric"]
    if not numeric or len(real) < 2 or synthetic.empty:
        return result
    x_real = np.column_stack([_as_float(real[k]) for k in numeric])
    x_synthetic = np.column_stack([_as_float(synthetic[k]) for k in numeric])
    low, high = np.nanmin(x_real, axis=0), np.nanmax(x_real, axis=0)
    span = np.where(high > low, high - low, 1.0)
    middle = np.nanmedian(x_real, axis=0)

    def scaled(x: np.ndarray) -> np.ndarray:
        return np.asarray((np.where(np.isnan(x), middle, x) - low) / span)

    rng = np.random.default_rng(seed)
    index = NearestNeighbors(n_neighbors=2).fit(scaled(x_real))
    probe = rng.permutation(len(x_synthetic))[:2000]
    distances, _ = index.kneighbors(scaled(x_synthetic[probe]), n_neighbors=1)
    result["dcr_median"] = _round(float(np.median(distances[:, 0])))
    probe = rng.permutation(len(x_real))[:2000]
    distances, _ = index.kneighbors(scaled(x_real[probe]), n_neighbors=2)
    result["dcr_real_median"] = _round(float(np.median(distances[:, 1])))
    return result


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def fidelity_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    target: str | None = None,
    seed: int = 0,
    id_columns: Collection[str] = (),
    holdout: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """How closely ``synthetic`` follows ``real``, as a JSON-able dict.

    Keys: ``columns`` (per column ``kind``, ``ks`` = 1 − KS statistic for numeric or
    ``tvd_complement`` = 1 − total variation distance for categorical, and both missing
    rates), ``column_shape_score`` (their mean), ``correlation_score`` (1 − mean |Δ Pearson|
    / 2 over pairs of numeric columns; None without a pair), ``association_score``
    (1 − mean |Δ Cramér's V| over pairs of categorical columns; not in ``overall``),
    ``worst_pairs``, ``discriminator_auc`` (3-fold cross-validated gradient boosting telling
    real from synthetic rows on up to 5000 rows of each), ``tstr`` (when ``target`` is given:
    trained on synthetic vs on real, both scored on real rows the real model did not see:
    ``holdout`` when given, else a seeded 30 % split of ``real``), ``privacy`` and ``overall``
    (mean of the shape and correlation scores). Columns in ``id_columns``, empty real columns
    and text columns whose real values are all distinct are left out and listed in
    ``skipped_columns``.
    """
    absent = [c for c in real.columns if c not in synthetic.columns]
    if absent:
        raise SyntheticDataError(f"synthetic data lacks column {absent[0]!r}")
    if target is not None and target not in real.columns:
        raise SyntheticDataError(f"unknown target column {target!r}")
    if holdout is not None and any(c not in holdout.columns for c in real.columns):
        raise SyntheticDataError("holdout must have the real data's columns")
    kinds, skipped = _report_kinds(real, id_columns)
    if target is not None and target not in kinds:
        raise SyntheticDataError(f"target {target!r} is {skipped[target]}")
    columns: dict[str, dict[str, Any]] = {}
    for name, kind in kinds.items():
        entry: dict[str, Any] = {"kind": kind}
        if kind == "numeric":
            a, b = _as_float(real[name]), _as_float(synthetic[name])
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            ks = stats.ks_2samp(a, b).statistic if len(b) else 1.0
            entry["ks"] = _round(1.0 - float(ks))
        else:
            entry["tvd_complement"] = _round(1.0 - _tvd(real[name], synthetic[name]))
        entry["missing_rate_real"] = _round(float(real[name].isna().mean()))
        entry["missing_rate_synthetic"] = _round(float(synthetic[name].isna().mean()))
        columns[name] = entry
    shapes = [e.get("ks", e.get("tvd_complement")) for e in columns.values()]
    shape_score = _round(float(np.mean(shapes))) if shapes else None

    numeric = [k for k, v in kinds.items() if v == "numeric"]
    real_corr = pd.DataFrame({k: _as_float(real[k]) for k in numeric}).corr()
    synthetic_corr = pd.DataFrame({k: _as_float(synthetic[k]) for k in numeric}).corr()
    pairs: list[tuple[float, str, float, float]] = []
    for i, left in enumerate(numeric):
        for right in numeric[i + 1 :]:
            r = float(real_corr.loc[left, right])
            if np.isnan(r):
                continue
            s = float(synthetic_corr.loc[left, right])
            s = 0.0 if np.isnan(s) else s  # a constant synthetic column correlates with nothing
            pairs.append((abs(r - s), f"{left} | {right}", r, s))
    correlation_score = _round(1.0 - float(np.mean([p[0] for p in pairs])) / 2) if pairs else None
    categorical = [k for k, v in kinds.items() if v == "categorical"]
    associations = [
        abs(_cramers_v(real[a], real[b]) - _cramers_v(synthetic[a], synthetic[b]))
        for i, a in enumerate(categorical)
        for b in categorical[i + 1 :]
    ]
    scores = [s for s in (shape_score, correlation_score) if s is not None]
    report: dict[str, Any] = {
        "rows_real": len(real),
        "rows_synthetic": len(synthetic),
        "columns": columns,
        "skipped_columns": skipped,
        "column_shape_score": shape_score,
        "correlation_score": correlation_score,
        "association_score": _round(1.0 - float(np.mean(associations))) if associations else None,
        "worst_pairs": [
            {"pair": name, "real": _round(r), "synthetic": _round(s)}
            for _, name, r, s in sorted(pairs, reverse=True)[:5]
        ],
        "discriminator_auc": _round(_discriminator_auc(real, synthetic, kinds, seed)),
        "privacy": _privacy(real, synthetic, kinds, seed),
        "overall": _round(float(np.mean(scores))) if scores else None,
    }
    if target is not None:
        if holdout is None:
            train, test = _split(real, target, kinds[target] == "categorical", seed)
        else:
            train, test = real, holdout
        report["tstr"] = _utility(train, synthetic, test, target, kinds, seed)
    return report


def _split(
    frame: pd.DataFrame, target: str, stratify: bool, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    labelled = frame[frame[target].notna()]
    try:
        labels = _distribution_keys(labelled[target]) if stratify else None
        train, test = train_test_split(labelled, test_size=0.3, random_state=seed, stratify=labels)
    except ValueError:
        train, test = train_test_split(labelled, test_size=0.3, random_state=seed)
    return train, test
