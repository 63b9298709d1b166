"""One column at a time: how a column is modelled, its fitted marginal and its inverse.

:class:`_Marginal` is a column's fitted distribution as plain data (so that a synthesizer
serializes to JSON): ``inverse`` maps uniforms back to values, ``score`` gives the normal-score
interval a condition means, ``restore`` rebuilds the fitted dtype. :func:`_fit_marginal` fits
one and returns the column's normal scores; :func:`_fit_id` and :func:`_ids` make fresh
identifiers. :class:`SyntheticDataError`, raised by every part of the package, lives here. The
method is described in the package docstring of :mod:`learnloop.loop.synthetic`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from learnloop.core.errors import InvalidInput

Kind = Literal["numeric", "categorical", "datetime", "empty", "id"]

MAX_KNOTS = 2001
MAX_INT_CATEGORIES = 10
MIN_ID_ROWS = 20
_DATETIME_STEPS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)
_SYN_ID = re.compile(r"^syn-(\d+)$")


class SyntheticDataError(InvalidInput, ValueError):
    """Bad input to the synthesizer, the fidelity report or the augmentation."""


# --------------------------------------------------------------------------- column handling


def _column_kind(series: pd.Series) -> Kind:
    """How a column is modelled: see the package docstring."""
    values = series.dropna()
    if values.empty:
        return "empty"
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        as_float = values.to_numpy(dtype=float)
        small_integer_set = (
            bool(np.all(as_float == np.round(as_float))) and values.nunique() <= MAX_INT_CATEGORIES
        )
        return "categorical" if small_integer_set else "numeric"
    return "categorical"


def _looks_like_id(series: pd.Series) -> bool:
    """A text column of at least ``MIN_ID_ROWS`` values, all distinct: an identifier."""
    count = int(series.notna().sum())
    return (
        count >= MIN_ID_ROWS
        and _column_kind(series) == "categorical"
        and not pd.api.types.is_numeric_dtype(series.dtype)
        and not pd.api.types.is_bool_dtype(series.dtype)
        and series.nunique() == count
    )


def _datetime_ns(series: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC for zone-aware columns) as float, NaN for NaT."""
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    as_ns = series.astype("datetime64[ns]")
    out = as_ns.to_numpy().view("int64").astype(float)
    out[as_ns.isna().to_numpy()] = np.nan
    return out


def _as_float(series: pd.Series) -> np.ndarray:
    """A numeric or datetime column as float (NaN for missing)."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _datetime_ns(series)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _decimals(values: np.ndarray) -> int | None:
    """Fewest decimals (0–6) that represent every value, or None when none does."""
    for decimals in range(7):
        scaled = values * 10.0**decimals
        tolerance = max(1e-6, 1e-12 * float(np.max(np.abs(scaled), initial=0.0)))
        if np.all(np.abs(scaled - np.round(scaled)) <= tolerance):
            return decimals
    return None


def _datetime_step(values: np.ndarray) -> int:
    ints = values.astype(np.int64)
    return next(step for step in _DATETIME_STEPS_NS if np.all(ints % step == 0))


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


@dataclass
class _Marginal:
    """One column's fitted marginal; plain data so that it serializes to JSON."""

    name: str
    kind: str
    dtype: str
    missing_rate: float = 0.0
    knots: list[float] = field(default_factory=list)
    decimals: int | None = None
    step: int | None = None
    timezone: str | None = None
    categories: list[Any] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    dtype_categories: list[Any] | None = None
    dtype_ordered: bool = False
    id_integer: bool = False
    id_next: int = 1

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """Uniforms in (0, 1) → values (float array for numeric/datetime, objects otherwise)."""
        if self.kind == "categorical":
            codes = np.searchsorted(np.asarray(self.cuts[1:-1]), u, side="right")
            return np.asarray(self.categories, dtype=object)[codes]
        knots = np.asarray(self.knots)
        x = np.interp(u, np.linspace(0.0, 1.0, len(knots)), knots)
        if self.kind == "datetime":
            step = self.step or 1
            return np.round(x / step) * step
        return np.round(x, self.decimals) if self.decimals is not None else x

    def score(self, value: Any) -> tuple[float, float]:
        """The normal-score interval (a point for numbers) that means ``column == value``."""
        if self.kind == "categorical":
            for k, category in enumerate(self.categories):
                if _same(category, value):
                    return _ppf(self.cuts[k]), _ppf(self.cuts[k + 1])
            raise SyntheticDataError(
                f"condition on {self.name!r}: value {value!r} never occurs in the fitted data"
            )
        try:
            if self.kind == "datetime":
                stamp = pd.Timestamp(value)
                x = float((stamp.tz_convert("UTC") if stamp.tzinfo else stamp).value)
            else:
                x = float(value)
        except (TypeError, ValueError) as e:
            raise SyntheticDataError(
                f"condition on {self.name!r}: {value!r} is not a {self.kind} value"
            ) from e
        knots = np.asarray(self.knots)
        if not knots[0] <= x <= knots[-1]:
            raise SyntheticDataError(
                f"condition on {self.name!r}: {value!r} is outside the fitted range"
            )
        left = int(np.searchsorted(knots, x, "left"))
        right = int(np.searchsorted(knots, x, "right"))
        if right > left:
            position = (left + right - 1) / 2
        else:
            position = left - 1 + (x - knots[left - 1]) / (knots[left] - knots[left - 1])
        z = _ppf(min(max(position / max(len(knots) - 1, 1), 1e-6), 1.0 - 1e-6))
        return z, z

    def restore(self, values: np.ndarray, missing: np.ndarray) -> pd.Series:
        """Values (from :meth:`inverse`) → a column with the fitted dtype."""
        if self.kind == "datetime":
            ints = np.where(missing, 0.0, values).astype(np.int64)
            series = pd.Series(ints.view("datetime64[ns]"))
            series[missing] = pd.NaT
            if self.timezone is not None:
                series = series.dt.tz_localize("UTC").dt.tz_convert(self.timezone)
            return _cast(series, self.dtype)
        if self.kind == "categorical":
            values = values.copy()
            values[missing] = None
            if self.dtype_categories is not None:
                categorical = pd.Categorical(
                    values, categories=self.dtype_categories, ordered=self.dtype_ordered
                )
                return pd.Series(categorical)
            return _cast(pd.Series(values, dtype=object), self.dtype)
        floats = np.where(missing, np.nan, values.astype(float))
        return _cast(pd.Series(floats), self.dtype)


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    try:
        return series.astype(pd.api.types.pandas_dtype(dtype))
    except (TypeError, ValueError):
        return series


def _ppf(u: float) -> float:
    return float(stats.norm.ppf(u))


def _fit_marginal(
    name: str,
    series: pd.Series,
    kind: Kind,
    rng: np.random.Generator,
    attenuation_correction: bool,
) -> tuple[_Marginal, np.ndarray | None, float]:
    """Fit one column; return its marginal, its normal scores (NaN where missing) and the
    scores' variance (1 for the uniform encoding; below 1 for interval means)."""
    present = series.notna().to_numpy()
    marginal = _Marginal(name=name, kind=kind, dtype=str(series.dtype))
    marginal.missing_rate = float(1.0 - present.mean()) if len(series) else 0.0
    if kind == "empty":
        return marginal, None, 1.0
    if isinstance(series.dtype, pd.CategoricalDtype):
        marginal.dtype_categories = [_python(c) for c in series.dtype.categories]
        marginal.dtype_ordered = bool(series.dtype.ordered)
    observed = series[present]
    count = len(observed)
    if kind == "categorical":
        counts = observed.value_counts(sort=True)
        counts = counts[counts > 0]
        marginal.categories = [_python(c) for c in counts.index]
        cuts = np.concatenate([[0.0], np.cumsum(counts.to_numpy() / count)])
        cuts[-1] = 1.0
        marginal.cuts = cuts.tolist()
        lookup = pd.Index(list(counts.index), dtype=object)
        codes = lookup.get_indexer(pd.Index(observed.to_numpy(dtype=object), dtype=object))
        low, high = cuts[codes], cuts[codes + 1]
    else:
        x = _as_float(observed)
        ordered = np.sort(x)
        below = np.searchsorted(ordered, x, "left")
        low = below / count
        high = np.searchsorted(ordered, x, "right") / count
        positions = np.linspace(0.0, count - 1.0, min(count, MAX_KNOTS))
        marginal.knots = np.interp(positions, np.arange(count), ordered).tolist()
        if kind == "datetime":
            marginal.step = _datetime_step(x)
            marginal.timezone = str(series.dt.tz) if series.dt.tz is not None else None
        elif pd.api.types.is_integer_dtype(series.dtype):
            marginal.decimals = 0
        else:
            marginal.decimals = _decimals(x)
    scores = np.full(len(series), np.nan)
    if attenuation_correction:
        # The mean of the standard normal over each value's interval of [0, 1].
        density_low = stats.norm.pdf(stats.norm.ppf(low))
        density_high = stats.norm.pdf(stats.norm.ppf(high))
        scores[present] = (density_low - density_high) / (high - low)
        return marginal, scores, float(np.mean(scores[present] ** 2))
    eps = 0.5 / count
    u = np.clip(low + rng.random(count) * (high - low), eps, 1.0 - eps)
    scores[present] = stats.norm.ppf(u)
    return marginal, scores, 1.0


def _fit_id(name: str, series: pd.Series) -> _Marginal:
    marginal = _Marginal(name=name, kind="id", dtype=str(series.dtype))
    observed = series.dropna()
    if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        marginal.id_integer = True
        marginal.id_next = int(observed.max()) + 1 if len(observed) else 1
    else:
        numbers = [int(m.group(1)) for v in observed if (m := _SYN_ID.match(str(v)))]
        marginal.id_next = max(numbers, default=0) + 1
    return marginal


def _ids(marginal: _Marginal, n: int, offset: int = 0) -> pd.Series:
    numbers = np.arange(n, dtype=np.int64) + marginal.id_next + offset
    if marginal.id_integer:
        return _cast(pd.Series(numbers), marginal.dtype)
    return _cast(pd.Series([f"syn-{i:06d}" for i in numbers], dtype=object), marginal.dtype)
