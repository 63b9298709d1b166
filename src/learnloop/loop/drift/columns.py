"""Drift of one column: its statistics, its effect size against a threshold, and the verdict.

:func:`column_drift` picks the column's kind from its dtype (numbers are numeric; booleans,
strings, categoricals and objects are categorical), computes the statistics of
:mod:`learnloop.loop.drift.stats` and applies the verdict rule of
:class:`~learnloop.loop.drift.config.DriftConfig`: ``drift = effect_over and significant``.
Missing values are left out of numeric columns (their shares are reported) and are a level of
their own, ``__missing__``, in categorical ones.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from learnloop.core.errors import InvalidInput
from learnloop.loop.drift import stats
from learnloop.loop.drift.config import DriftConfig

Array = npt.NDArray[np.float64]

Kind = Literal["numeric", "categorical"]

MISSING = "__missing__"
OTHER = "__other__"


def column_kind(series: pd.Series) -> Kind:
    """``numeric`` for int/float dtypes, ``categorical`` for everything else (bool included)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    return "numeric"


def _as_float(series: pd.Series) -> Array:
    """The values as float64 without a copy when they already are (NA becomes NaN)."""
    if isinstance(series.dtype, np.dtype):
        return np.asarray(series, dtype=np.float64)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _verdict(
    result: dict[str, Any], effect: float, threshold: float, config: DriftConfig
) -> dict[str, Any]:
    over_psi = result["psi"] >= config.psi_threshold
    result["effect"] = effect
    result["threshold"] = threshold
    result["effect_over"] = bool(effect >= threshold or over_psi)
    result["effect_reason"] = (
        result["effect_name"] if effect >= threshold else "psi" if over_psi else None
    )
    result["significant"] = bool(result["p_value"] < config.alpha)
    result["drift"] = result["effect_over"] and result["significant"]
    result["power_ok"] = bool(result["mde"] <= threshold)
    return result


def _numeric(reference: pd.Series, current: pd.Series, config: DriftConfig) -> dict[str, Any]:
    ref, ref_missing = stats.finite_sorted(_as_float(reference))
    cur, cur_missing = stats.finite_sorted(_as_float(current))
    result: dict[str, Any] = {
        "kind": "numeric",
        "test": "ks",
        "effect_name": "wasserstein_normed",
        "n_reference": len(ref),
        "n_current": len(cur),
        "missing_reference": ref_missing / max(len(reference), 1),
        "missing_current": cur_missing / max(len(current), 1),
    }
    if len(ref) == 0 or len(cur) == 0:
        return _empty(result, config.wasserstein_threshold)
    result.update(stats.numeric_statistics(ref, cur, config.bins, config.psi_floor))
    result["statistic"] = result["ks"]
    result["mde"] = stats.numeric_mde(len(ref), len(cur), config.alpha, config.power)
    return _verdict(result, result["wasserstein_normed"], config.wasserstein_threshold, config)


def _level_counts(series: pd.Series) -> pd.Series:
    counts = series.value_counts(dropna=False, sort=False)
    counts.index = [MISSING if pd.isna(k) else str(k) for k in counts.index]
    return counts.groupby(level=0).sum()  # str() may merge levels (1 and "1")


def _categorical(reference: pd.Series, current: pd.Series, config: DriftConfig) -> dict[str, Any]:
    ref_counts = _level_counts(reference)
    cur_counts = _level_counts(current)
    levels = ref_counts.sort_values(ascending=False, kind="stable").index.tolist()
    levels += sorted(set(cur_counts.index) - set(levels), key=lambda k: -cur_counts[k])
    table = pd.DataFrame({"reference": ref_counts, "current": cur_counts}).reindex(levels)
    table = table.fillna(0).astype(np.int64)
    if len(table) > config.max_categories:
        kept = table.iloc[: config.max_categories - 1]
        rest = table.iloc[config.max_categories - 1 :].sum().rename(OTHER)
        table = pd.concat([kept, rest.to_frame().T])
    r, c = table["reference"].to_numpy(), table["current"].to_numpy()
    n, m = int(r.sum()), int(c.sum())
    result: dict[str, Any] = {
        "kind": "categorical",
        "test": "chi_square",
        "effect_name": "js",
        "n_reference": n,
        "n_current": m,
        "missing_reference": float(ref_counts.get(MISSING, 0)) / max(n, 1),
        "missing_current": float(cur_counts.get(MISSING, 0)) / max(m, 1),
    }
    if n == 0 or m == 0:
        return _empty(result, config.js_threshold)
    statistic, p_value, dof = stats.chi_square(r, c)
    result.update(
        statistic=statistic,
        p_value=p_value,
        dof=dof,
        js=stats.js_distance(r, c),
        psi=stats.psi(r, c, config.psi_floor),
        mde=stats.categorical_mde(n, m, dof + 1, config.alpha, config.power),
        histogram={
            "levels": [str(k) for k in table.index],
            "reference": (r / n).tolist(),
            "current": (c / m).tolist(),
        },
    )
    return _verdict(result, result["js"], config.js_threshold, config)


def _empty(result: dict[str, Any], threshold: float) -> dict[str, Any]:
    result.update(
        statistic=None, p_value=None, psi=None, effect=None, threshold=threshold,
        effect_over=False, effect_reason=None, significant=False, drift=False,
        power_ok=False, mde=None, reason="no values on one side",
    )  # fmt: skip
    return result


def column_drift(
    reference: pd.Series,
    current: pd.Series,
    config: DriftConfig | None = None,
    *,
    kind: Kind | None = None,
) -> dict[str, Any]:
    """Drift statistics and verdict of one column; a JSON-able dict.

    Keys common to both kinds: ``kind``, ``test`` (``ks`` or ``chi_square``), ``statistic``,
    ``p_value``, ``effect_name`` (``wasserstein_normed`` or ``js``), ``effect``, ``threshold``,
    ``psi``, ``effect_over`` (main effect or PSI at/over its threshold), ``effect_reason``,
    ``significant`` (p < alpha), ``drift`` (both), ``mde`` (minimum detectable effect in the
    effect's unit), ``power_ok`` (``mde <= threshold``), sample sizes, missing shares,
    ``histogram`` and ``seconds``. Numeric columns add ``ks``, ``wasserstein``,
    ``wasserstein_normed``, means and stds; categorical ones ``js`` and ``dof``.
    ``kind`` overrides the dtype-based choice (e.g. integer codes that are categories).
    Raises :class:`InvalidInput` for a numeric ``kind`` on a non-numeric column.
    """
    config = config or DriftConfig()
    started = time.perf_counter()
    chosen = kind or column_kind(reference)
    if chosen == "numeric":
        if column_kind(reference) != "numeric" or column_kind(current) != "numeric":
            raise InvalidInput(f"column {reference.name!r} is not numeric on both sides")
        result = _numeric(reference, current, config)
    else:
        result = _categorical(reference, current, config)
    result["seconds"] = time.perf_counter() - started
    return result
