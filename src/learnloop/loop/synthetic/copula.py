"""The Gaussian copula itself: the latent correlation, conditional sampling, the synthesizer.

:func:`_correlation` turns the columns' normal scores into a positive definite correlation;
:func:`_sample_scores` draws from it with some columns confined to intervals (conditions);
:class:`GaussianCopulaSynthesizer` ties these to the per-column marginals of
:mod:`learnloop.loop.synthetic.marginals`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from learnloop.loop.synthetic.marginals import (
    SyntheticDataError,
    _column_kind,
    _fit_id,
    _fit_marginal,
    _ids,
    _looks_like_id,
    _Marginal,
    _same,
)

FORMAT = "learnloop.gaussian_copula/1"
_RIDGE = 1e-3
_GIBBS_SWEEPS = 25
_FULL_VARIANCE = 0.99
_MAX_LATENT = 0.99


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
    """Gaussian copula synthesizer for one table; the method is in the package docstring.

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
