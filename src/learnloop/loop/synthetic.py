"""Synthetic tabular data: a Gaussian copula generator, a fidelity report, rare-class augmentation.

**Generator** (:class:`GaussianCopulaSynthesizer`, the method of SDV's synthesizer of the same
name, implemented here on numpy/scipy). ``fit`` learns one marginal per column and one
correlation matrix:

- *numeric* columns: the empirical distribution. Sampling inverts it by linear interpolation
  between the sorted values (at most ``MAX_KNOTS`` evenly spaced order statistics are kept, so
  larger tables are not stored row by row). Values never leave the observed ``[min, max]``;
  integer columns stay integers and float columns are rounded to the decimals the data has
  (``298.1`` stays one decimal). Integer-valued columns with at most ``MAX_INT_CATEGORIES``
  distinct values (flags, 0/1 labels) are treated as categorical.
- *categorical* columns (object, string, category, bool and the small integer sets above): each
  category owns an interval of ``[0, 1]`` as wide as its frequency (most frequent first); a
  value maps to a uniform draw inside its interval ("uniform encoding"), and back by finding
  the interval a sample falls in.
- *datetime* columns: as numeric on the int64 nanosecond count, rounded to the coarsest unit
  (day, hour, minute, second, ms, µs) the data uses; the time zone is kept.

Every value is mapped to a normal score ``Φ⁻¹(F(x))`` (ties spread uniformly over their CDF
step, so discrete columns get continuous scores). The Pearson correlation of the scores
(pairwise over rows where both are present) is shrunk by a small ridge and projected to be
positive definite. ``sample`` draws from that multivariate normal and maps each score back
through its marginal. Each column's missing rate is reproduced by blanking values at random
(missingness is independent of the other columns). Columns named in ``id_columns`` are never
modelled or copied: integer ids continue after the largest real id, other ids are
``syn-000001``, ``syn-000002``… (after any ``syn-`` ids already present). Text columns with at
least ``MIN_ID_ROWS`` values, all distinct, are treated as ids without being named (unless
``column_kinds`` names them); integer ids must be named, or they are modelled as numbers.

``sample(n, conditions=…)`` fixes columns exactly by conditioning the Gaussian: a categorical
value confines its score to that category's interval (a truncated normal; with several such
conditions, 25 Gibbs sweeps over them), a numeric value pins its score; the other columns are
then drawn from the conditional normal given the fixed scores. No rejection loop, so rare
categories cost nothing extra. The copula only captures monotone pairwise dependence: rows
conditioned on a rare label look like the label's *correlations*, not its exact shape — for
that, fit a synthesizer on the label's rows alone (what :func:`augment_rare` does).

**Fidelity** (:func:`fidelity_report`): per-column shape (1 − KS statistic, or 1 − total
variation distance), pairwise Pearson correlations of numeric columns, Cramér's V between
categorical columns (reported as ``association_score``, outside ``overall``), a cross-validated
real-vs-synthetic classifier (ROC-AUC; 0.5 means indistinguishable), train-synthetic/test-real
utility, and privacy checks (exact copies, distance to the closest real record).

**Augmentation** (:func:`augment_rare`): tops every class of a target up to ``min_fraction`` of
the rows, with copula samples fitted on that class alone or SMOTE interpolation, and marks the
added rows in a bool ``_synthetic`` column.

Bad input raises :class:`SyntheticDataError`, which is both an
:class:`~learnloop.core.errors.InvalidInput` and a ``ValueError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from learnloop.core.errors import InvalidInput

Kind = Literal["numeric", "categorical", "datetime", "empty", "id"]

MAX_KNOTS = 2001
MAX_INT_CATEGORIES = 10
MIN_ID_ROWS = 20
SYNTHETIC_FLAG = "_synthetic"
FORMAT = "learnloop.gaussian_copula/1"
_RIDGE = 1e-3
_GIBBS_SWEEPS = 25
_FULL_VARIANCE = 0.99
_MAX_LATENT = 0.99
_DATETIME_STEPS_NS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)
_SYN_ID = re.compile(r"^syn-(\d+)$")


class SyntheticDataError(InvalidInput, ValueError):
    """Bad input to the synthesizer, the fidelity report or the augmentation."""


# --------------------------------------------------------------------------- column handling


def _column_kind(series: pd.Series) -> Kind:
    """How a column is modelled: see the module docstring."""
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


def _correlation(scores: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """Latent correlation of the normal scores, ridged and made positive definite.

    Pearson correlation over the rows where both columns are present. Interval-mean scores
    of a column with variance ``a < 1`` (few distinct values) shrink its correlations by
    ``sqrt(a)`` under the latent-Gaussian model, so a pair is divided by ``sqrt(a_i a_j)``
    after soft-thresholding by two standard errors (``2 / sqrt(rows)``), which keeps sampling
    noise on rare categories from being amplified.
    """
    p = scores.shape[1]
    if p == 0:
        return np.zeros((0, 0))
    corr = pd.DataFrame(scores).corr(min_periods=3).to_numpy()
    corr = np.nan_to_num(corr, nan=0.0)
    variances = np.maximum(variances, 1e-6)  # a constant column has no correlation to scale
    present = (~np.isnan(scores)).astype(float)
    noise = 2.0 / np.sqrt(np.maximum(present.T @ present, 1.0))
    shrunk = np.outer(variances, variances) < _FULL_VARIANCE**2
    corrected = np.sign(corr) * np.maximum(np.abs(corr) - noise, 0.0)
    corrected /= np.sqrt(np.outer(variances, variances))
    corr = np.where(shrunk, np.clip(corrected, -_MAX_LATENT, _MAX_LATENT), corr)
    np.fill_diagonal(corr, 1.0)
    corr = (1.0 - _RIDGE) * corr + _RIDGE * np.eye(p)
    eigenvalues, vectors = np.linalg.eigh(corr)
    corr = (vectors * np.clip(eigenvalues, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(corr))
    return np.asarray(corr / np.outer(scale, scale))


def _cholesky(cov: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(cov + 1e-10 * np.eye(len(cov)))
    except np.linalg.LinAlgError:
        eigenvalues, vectors = np.linalg.eigh(cov)
        return np.asarray(vectors * np.sqrt(np.clip(eigenvalues, 0.0, None)))


def _truncated_block(
    cov: np.ndarray, n: int, bounds: Sequence[tuple[float, float]], rng: np.random.Generator
) -> np.ndarray:
    """Draws of N(0, cov) confined to a box (points where low == high), by Gibbs sampling."""
    low = np.array([b[0] for b in bounds])
    high = np.array([b[1] for b in bounds])
    start = stats.norm.ppf((stats.norm.cdf(low) + stats.norm.cdf(high)) / 2)
    z = np.tile(np.where(low == high, low, start), (n, 1))
    free = [i for i in range(len(bounds)) if low[i] < high[i]]
    sweeps = 1 if len(free) <= 1 else _GIBBS_SWEEPS
    for _ in range(sweeps):
        for i in free:
            others = [j for j in range(len(bounds)) if j != i]
            if others:
                weights = np.linalg.solve(cov[np.ix_(others, others)], cov[others, i])
                mean = z[:, others] @ weights
                sd = math.sqrt(max(cov[i, i] - cov[i, others] @ weights, 1e-12))
            else:
                mean, sd = np.zeros(n), math.sqrt(cov[i, i])
            draw = stats.truncnorm.rvs(
                (low[i] - mean) / sd, (high[i] - mean) / sd, size=n, random_state=rng
            )
            z[:, i] = np.clip(mean + sd * draw, low[i], high[i])
    return z


def _sample_scores(
    corr: np.ndarray, n: int, bounds: Mapping[int, tuple[float, float]], rng: np.random.Generator
) -> np.ndarray:
    """n draws of N(0, corr) with the columns in ``bounds`` confined to their intervals."""
    p = corr.shape[0]
    z = np.zeros((n, p))
    fixed = sorted(bounds)
    rest = [j for j in range(p) if j not in bounds]
    mean: np.ndarray | float = 0.0
    cov = corr[np.ix_(rest, rest)]
    if fixed:
        cov_fixed = corr[np.ix_(fixed, fixed)]
        z[:, fixed] = _truncated_block(cov_fixed, n, [bounds[j] for j in fixed], rng)
        if rest:
            cross = corr[np.ix_(rest, fixed)]
            weights = np.linalg.solve(cov_fixed, cross.T).T
            mean = z[:, fixed] @ weights.T
            cov = cov - weights @ cross.T
    if rest:
        z[:, rest] = mean + rng.standard_normal((n, len(rest))) @ _cholesky(cov).T
    return z


# --------------------------------------------------------------------------- the synthesizer


class GaussianCopulaSynthesizer:
    """Gaussian copula synthesizer for one table; the method is in the module docstring.

    ``column_kinds`` overrides the detected kind of named columns (``"numeric"`` or
    ``"categorical"``). Not thread-safe while sampling without an explicit ``seed`` (the
    synthesizer's own random stream advances).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        id_columns: Collection[str] = (),
        column_kinds: Mapping[str, Literal["numeric", "categorical"]] | None = None,
        attenuation_correction: bool = True,
    ) -> None:
        self.seed = seed
        self.attenuation_correction = attenuation_correction
        self.id_columns = tuple(id_columns)
        self.column_kinds = dict(column_kinds or {})
        self._marginals: list[_Marginal] | None = None
        self._copula: list[str] = []
        self._corr = np.zeros((0, 0))
        self._stream = np.random.default_rng([seed, 1])

    def fit(self, frame: pd.DataFrame) -> GaussianCopulaSynthesizer:
        """Learn marginals and correlation from ``frame`` (at least one row)."""
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise SyntheticDataError("cannot fit a synthesizer on an empty frame")
        if frame.columns.duplicated().any():
            raise SyntheticDataError("column names must be unique")
        for name in [*self.id_columns, *self.column_kinds]:
            if name not in frame.columns:
                raise SyntheticDataError(f"unknown column {name!r}")
        for name, kind in self.column_kinds.items():
            if kind not in ("numeric", "categorical"):
                raise SyntheticDataError(f"column {name!r}: unknown kind {kind!r}")
        rng = np.random.default_rng([self.seed, 0])
        marginals: list[_Marginal] = []
        copula: list[str] = []
        scores: list[np.ndarray] = []
        variances: list[float] = []
        for name in frame.columns:
            series = frame[name]
            if name in self.id_columns or (
                name not in self.column_kinds and _looks_like_id(series)
            ):
                marginals.append(_fit_id(name, series))
                continue
            kind = _column_kind(series)
            override = self.column_kinds.get(name)
            if override == "categorical" and kind != "empty":
                kind = "categorical"
            elif override == "numeric" and kind == "categorical":
                if not pd.api.types.is_numeric_dtype(series.dtype):
                    raise SyntheticDataError(f"column {name!r} is not numeric")
                kind = "numeric"
            marginal, column_scores, variance = _fit_marginal(
                name, series, kind, rng, self.attenuation_correction
            )
            marginals.append(marginal)
            if column_scores is not None:
                copula.append(name)
                scores.append(column_scores)
                variances.append(variance)
        matrix = np.column_stack(scores) if scores else np.zeros((len(frame), 0))
        self._marginals, self._copula = marginals, copula
        self._corr = _correlation(matrix, np.asarray(variances))
        self._stream = np.random.default_rng([self.seed, 1])
        return self

    @property
    def correlation(self) -> pd.DataFrame:
        """The fitted correlation of normal scores (modelled columns only)."""
        return pd.DataFrame(self._corr, index=self._copula, columns=self._copula)

    def sample(
        self, n: int, *, conditions: Mapping[str, Any] | None = None, seed: int | None = None
    ) -> pd.DataFrame:
        """``n`` synthetic rows with the fitted frame's columns and dtypes.

        ``conditions`` fixes columns to a value (``{"Machine failure": 1}``); unknown columns,
        id/empty columns, unseen categories and numbers outside the fitted range raise
        :class:`SyntheticDataError` naming the column. Without ``seed`` the synthesizer's own
        stream is used (successive calls differ; a fresh fit with the same seed repeats them);
        with ``seed`` the result depends only on it.
        """
        marginals = self._fitted()
        if n < 0:
            raise SyntheticDataError(f"n must be >= 0, got {n}")
        rng = self._stream if seed is None else np.random.default_rng(seed)
        conditions = dict(conditions or {})
        by_name = {m.name: m for m in marginals}
        bounds: dict[int, tuple[float, float]] = {}
        for name, value in conditions.items():
            marginal = by_name.get(name)
            if marginal is None:
                raise SyntheticDataError(f"condition on unknown column {name!r}")
            if marginal.kind in ("id", "empty"):
                raise SyntheticDataError(f"cannot condition on {marginal.kind} column {name!r}")
            bounds[self._copula.index(name)] = marginal.score(value)
        z = _sample_scores(self._corr, n, bounds, rng)
        u = np.clip(stats.norm.cdf(z), 1e-12, 1.0 - 1e-12)
        columns: dict[str, pd.Series] = {}
        for marginal in marginals:
            if marginal.kind == "id":
                columns[marginal.name] = _ids(marginal, n)
                continue
            if marginal.kind == "empty":
                values = np.full(n, None, dtype=object)
                columns[marginal.name] = marginal.restore(values, np.ones(n, dtype=bool))
                continue
            values = marginal.inverse(u[:, self._copula.index(marginal.name)])
            missing = rng.random(n) < marginal.missing_rate
            if marginal.name in conditions:
                missing[:] = False
                if marginal.kind == "categorical":
                    wanted = conditions[marginal.name]
                    match = next(c for c in marginal.categories if _same(c, wanted))
                    values = np.full(n, match, dtype=object)
                else:
                    values = self._numeric_condition(marginal, conditions[marginal.name], n)
            columns[marginal.name] = marginal.restore(values, missing)
        return pd.DataFrame(columns, index=pd.RangeIndex(n))

    @staticmethod
    def _numeric_condition(marginal: _Marginal, value: Any, n: int) -> np.ndarray:
        if marginal.kind == "datetime":
            stamp = pd.Timestamp(value)
            return np.full(n, float((stamp.tz_convert("UTC") if stamp.tzinfo else stamp).value))
        return np.full(n, float(value))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters; :meth:`from_dict` rebuilds an equivalent synthesizer."""
        marginals = self._fitted()
        return {
            "format": FORMAT,
            "seed": self.seed,
            "id_columns": list(self.id_columns),
            "column_kinds": dict(self.column_kinds),
            "attenuation_correction": self.attenuation_correction,
            "columns": [asdict(m) for m in marginals],
            "copula_columns": list(self._copula),
            "correlation": self._corr.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GaussianCopulaSynthesizer:
        """Rebuild a fitted synthesizer from :meth:`to_dict` output."""
        if data.get("format") != FORMAT:
            raise SyntheticDataError(f"not a {FORMAT} document")
        synthesizer = cls(
            seed=int(data["seed"]),
            id_columns=data["id_columns"],
            column_kinds=data["column_kinds"],
            attenuation_correction=bool(data["attenuation_correction"]),
        )
        synthesizer._marginals = [_Marginal(**m) for m in data["columns"]]
        synthesizer._copula = list(data["copula_columns"])
        synthesizer._corr = np.asarray(data["correlation"], dtype=float).reshape(
            len(synthesizer._copula), len(synthesizer._copula)
        )
        return synthesizer

    def _fitted(self) -> list[_Marginal]:
        if self._marginals is None:
            raise SyntheticDataError("the synthesizer is not fitted; call fit(frame) first")
        return self._marginals


# --------------------------------------------------------------------------- fidelity report


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


# --------------------------------------------------------------------------- augmentation


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
