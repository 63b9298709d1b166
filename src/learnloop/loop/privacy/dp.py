"""Differentially private aggregate releases under an explicit (ε, δ) budget.

:func:`release` answers a batch of :class:`DpQuery` (count, sum, mean, histogram) over a frame,
adding noise from diffprivlib's mechanisms, and charges a :class:`PrivacyBudget`.

Neighbouring datasets differ by adding or removing one row. Sensitivities (L1 for Laplace, L2
for Gaussian, equal here because a row touches one value):

- ``count``: 1. With ``column``, only rows where it is not missing are counted.
- ``sum``: ``max(|lo|, |hi|)``; values are clipped to ``bounds`` first and missing values skipped.
- ``mean``: a noisy clipped sum divided by a noisy count, each spending half the query's ε (and
  half its δ); the ratio (denominator at least 1) is clipped back into ``bounds``. The answer's
  ``sensitivity`` and ``noise_scale`` are those of the sum half; the count half uses
  sensitivity 1 with the same mechanism.
- ``histogram``: 1. Each row falls in at most one bin, so the bins are disjoint and, by parallel
  composition, every bin gets the query's full ε; the query costs ε once, not once per bin.
  ``bins`` are numeric edges (for a numeric column and numeric bins: ``np.histogram``'s
  half-open bins, the last one closed; rows outside are not counted) giving a list, or
  categories giving a dict keyed by ``str(category)``.

``where`` keeps only rows equal to the given value in each named column (missing matches
missing); it is applied before the aggregate and does not change the sensitivity.

Mechanisms: ``laplace`` (scale ``b = Δ / (ε - ln(1 - δ))``, i.e. ``Δ / ε`` for δ = 0; noise
std ``√2·b``) and ``gaussian``, which is the *analytic* Gaussian mechanism of Balle and Wang
(2018) and needs δ > 0; it is valid for every ε > 0 and its σ is smaller than the classic
``√(2 ln(1.25/δ))·Δ/ε``. ``noise_scale`` reports ``b`` or ``σ``. Answers are not rounded or
clamped to be non-negative, so they stay unbiased; post-process them freely, it costs nothing.

Budget: basic sequential composition. A batch costs the sum of its queries' ε and δ;
:func:`release` validates every query, then charges the whole batch at once (all or nothing:
:class:`BudgetExceeded` leaves the budget untouched and answers nothing), then answers.
A :class:`PrivacyBudget` is a plain mutable record, not safe to share between threads without a
lock. With ``seed`` the noise is reproducible (one ``RandomState`` drawn from in query order);
without it diffprivlib draws from the operating system's secure generator.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd

from learnloop.core.errors import Conflict, InvalidInput, Issue

QueryKind = Literal["count", "sum", "mean", "histogram"]
Mechanism = Literal["laplace", "gaussian"]

_KINDS: tuple[str, ...] = ("count", "sum", "mean", "histogram")
_MECHANISMS: tuple[str, ...] = ("laplace", "gaussian")
_SLACK = 1e-9  # relative tolerance when adding up float budgets (10 x 0.1 fits in 1.0)


class BudgetExceeded(Conflict):
    """Answering would spend more ε or δ than the budget has left; nothing was spent."""


class InvalidQuery(InvalidInput, ValueError):
    """A :class:`DpQuery` is malformed or does not fit the frame; ``issues`` names the field.

    Both an :class:`~learnloop.core.errors.InvalidInput` and a :class:`ValueError`.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__("invalid privacy query", [Issue(loc=field, message=message)])
        self.field = field


@dataclass
class PrivacyBudget:
    """A total (ε, δ) and what has been spent of it, under basic sequential composition."""

    epsilon: float
    delta: float = 0.0
    spent_epsilon: float = 0.0
    spent_delta: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"PrivacyBudget.epsilon must be finite and > 0, got {self.epsilon}")
        if not 0.0 <= self.delta < 1.0:
            raise ValueError(f"PrivacyBudget.delta must be in [0, 1), got {self.delta}")
        if self.spent_epsilon < 0 or self.spent_delta < 0:
            raise ValueError("PrivacyBudget spent amounts must be >= 0")

    def remaining(self) -> tuple[float, float]:
        """``(ε, δ)`` still available (never negative)."""
        return (
            max(self.epsilon - self.spent_epsilon, 0.0),
            max(self.delta - self.spent_delta, 0.0),
        )

    def spend(self, epsilon: float, delta: float = 0.0) -> None:
        """Charge ``(epsilon, delta)``; raise :class:`BudgetExceeded`, changing nothing, if over."""
        if not (math.isfinite(epsilon) and epsilon >= 0) or not 0.0 <= delta <= 1.0:
            raise ValueError(f"cannot spend epsilon={epsilon}, delta={delta}")
        new_epsilon = self.spent_epsilon + epsilon
        new_delta = self.spent_delta + delta
        if new_epsilon > self.epsilon * (1 + _SLACK) or new_delta > self.delta * (1 + _SLACK):
            left_epsilon, left_delta = self.remaining()
            raise BudgetExceeded(
                f"privacy budget exceeded: asked for epsilon={epsilon:g}, delta={delta:g}; "
                f"remaining epsilon={left_epsilon:g}, delta={left_delta:g}"
            )
        self.spent_epsilon = new_epsilon
        self.spent_delta = new_delta


@dataclass(frozen=True)
class DpQuery:
    """One aggregate to release; what needs the frame is checked by :func:`release`.

    ``bounds`` (clipping range) is required for ``sum`` and ``mean``; ``bins`` for
    ``histogram``; ``column`` for all but ``count``. ``gaussian`` needs ``delta > 0``.
    """

    kind: QueryKind
    column: str | None = None
    bounds: tuple[float, float] | None = None
    bins: Sequence[Any] | None = None
    epsilon: float = 0.1
    delta: float = 0.0
    mechanism: Mechanism = "laplace"
    where: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidQuery("kind", f"must be one of {_KINDS}, got {self.kind!r}")
        if self.mechanism not in _MECHANISMS:
            raise InvalidQuery("mechanism", f"must be one of {_MECHANISMS}, got {self.mechanism!r}")
        if not _is_number(self.epsilon) or not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise InvalidQuery("epsilon", f"must be a finite number > 0, got {self.epsilon!r}")
        if not _is_number(self.delta) or not 0.0 <= self.delta < 1.0:
            raise InvalidQuery("delta", f"must be in [0, 1), got {self.delta!r}")
        if self.mechanism == "gaussian" and self.delta <= 0:
            raise InvalidQuery("delta", "the gaussian mechanism needs delta > 0")
        if self.kind != "count" and self.column is None:
            raise InvalidQuery("column", f"a {self.kind} query needs a column")
        if self.kind in ("sum", "mean"):
            if self.bounds is None:
                raise InvalidQuery("bounds", f"a {self.kind} query needs bounds (lo, hi)")
            if len(self.bounds) != 2 or not all(_is_number(b) for b in self.bounds):
                raise InvalidQuery("bounds", f"must be two numbers, got {self.bounds!r}")
            lo, hi = (float(b) for b in self.bounds)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InvalidQuery("bounds", f"must be finite with lo < hi, got {self.bounds!r}")
            object.__setattr__(self, "bounds", (lo, hi))
        elif self.bounds is not None:
            raise InvalidQuery("bounds", "bounds only apply to sum and mean queries")
        if self.kind == "histogram":
            if self.bins is None or isinstance(self.bins, str) or len(self.bins) == 0:
                raise InvalidQuery("bins", "a histogram query needs a non-empty list of bins")
            object.__setattr__(self, "bins", tuple(self.bins))
        elif self.bins is not None:
            raise InvalidQuery("bins", "bins only apply to histogram queries")

    @property
    def sensitivity(self) -> float:
        """Sensitivity of the released statistic (of the sum half, for ``mean``)."""
        if self.kind in ("sum", "mean"):
            assert self.bounds is not None
            return max(abs(self.bounds[0]), abs(self.bounds[1]))
        return 1.0


@dataclass
class DpAnswer:
    """A released value with the noise parameters actually used."""

    query: DpQuery
    value: float | list[float] | dict[str, float]
    noise_scale: float
    sensitivity: float
    epsilon: float
    delta: float


def release(
    frame: pd.DataFrame,
    queries: Sequence[DpQuery],
    budget: PrivacyBudget,
    *,
    seed: int | None = None,
) -> list[DpAnswer]:
    """Answer ``queries`` over ``frame`` with differential privacy, charging ``budget`` once.

    Raises :class:`InvalidQuery` (a ``ValueError``) for a query that does not fit the frame and
    :class:`BudgetExceeded` when the batch's total ε or δ does not fit; in both cases nothing is
    spent and nothing is answered.
    """
    for i, query in enumerate(queries):
        _check_against(frame, query, i)
    budget.spend(sum(q.epsilon for q in queries), sum(q.delta for q in queries))
    noise = _Noise(np.random.RandomState(seed) if seed is not None else None)
    return [_answer(frame, query, noise) for query in queries]


# --- validation against the frame ---------------------------------------------------------------


def _check_against(frame: pd.DataFrame, query: DpQuery, index: int) -> None:
    at = f"queries[{index}]"
    if query.column is not None and query.column not in frame.columns:
        raise InvalidQuery(f"{at}.column", f"column {query.column!r} is not in the frame")
    for name in query.where or {}:
        if name not in frame.columns:
            raise InvalidQuery(f"{at}.where", f"column {name!r} is not in the frame")
    if query.kind in ("sum", "mean"):
        assert query.column is not None
        if not _numeric_column(frame[query.column]):
            raise InvalidQuery(f"{at}.column", f"column {query.column!r} is not numeric")
    if query.kind == "histogram":
        assert query.column is not None and query.bins is not None
        if _uses_edges(frame[query.column], query.bins):
            edges = np.asarray(query.bins, dtype=float)
            if len(edges) < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
                raise InvalidQuery(
                    f"{at}.bins", "numeric bin edges must be >= 2 finite, increasing numbers"
                )
        elif len({str(b) for b in query.bins}) != len(query.bins):
            raise InvalidQuery(f"{at}.bins", "histogram categories must be distinct")


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _numeric_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _uses_edges(series: pd.Series, bins: Sequence[Any]) -> bool:
    return _numeric_column(series) and all(_is_number(b) for b in bins)


# --- answering ----------------------------------------------------------------------------------


def _answer(frame: pd.DataFrame, query: DpQuery, noise: _Noise) -> DpAnswer:
    rows = _filtered(frame, query.where)
    sensitivity = query.sensitivity
    value: float | list[float] | dict[str, float]
    if query.kind == "count":
        truth = len(rows) if query.column is None else int(rows[query.column].notna().sum())
        noisy, scale = noise.add(query, float(truth), sensitivity, 1.0)
        value = noisy
    elif query.kind == "sum":
        noisy, scale = noise.add(query, _clipped(rows, query).sum(), sensitivity, 1.0)
        value = noisy
    elif query.kind == "mean":
        clipped = _clipped(rows, query)
        noisy_sum, scale = noise.add(query, float(clipped.sum()), sensitivity, 0.5)
        noisy_count, _ = noise.add(query, float(len(clipped)), 1.0, 0.5)
        assert query.bounds is not None
        lo, hi = query.bounds
        value = float(np.clip(noisy_sum / max(noisy_count, 1.0), lo, hi))
    else:
        value, scale = _histogram(rows, query, noise)
    return DpAnswer(
        query=query,
        value=value,
        noise_scale=scale,
        sensitivity=sensitivity,
        epsilon=query.epsilon,
        delta=query.delta,
    )


def _filtered(frame: pd.DataFrame, where: Mapping[str, Any] | None) -> pd.DataFrame:
    if not where:
        return frame
    mask = np.ones(len(frame), dtype=bool)
    for name, wanted in where.items():
        column = frame[name]
        if wanted is None or (isinstance(wanted, float) and math.isnan(wanted)):
            mask &= column.isna().to_numpy()
        else:
            mask &= (column == wanted).fillna(False).to_numpy(dtype=bool)
    return frame.loc[mask]


def _clipped(rows: pd.DataFrame, query: DpQuery) -> pd.Series:
    assert query.column is not None and query.bounds is not None
    values = pd.to_numeric(rows[query.column]).dropna().astype(float)
    return values.clip(query.bounds[0], query.bounds[1])


def _histogram(
    rows: pd.DataFrame, query: DpQuery, noise: _Noise
) -> tuple[list[float] | dict[str, float], float]:
    assert query.column is not None and query.bins is not None
    column = rows[query.column]
    scale = 0.0
    if _uses_edges(column, query.bins):
        counts, _ = np.histogram(column.dropna().to_numpy(dtype=float), bins=query.bins)
        noisy = []
        for count in counts:
            value, scale = noise.add(query, float(count), 1.0, 1.0)
            noisy.append(value)
        return noisy, scale
    frequencies = column.value_counts(dropna=False)
    released: dict[str, float] = {}
    for category in query.bins:
        value, scale = noise.add(query, float(frequencies.get(category, 0)), 1.0, 1.0)
        released[str(category)] = value
    return released, scale


class _Noise:
    """The mechanisms of one :func:`release`: one per (mechanism, ε, δ, sensitivity), one RNG."""

    def __init__(self, rng: np.random.RandomState | None) -> None:
        self._rng = rng
        self._made: dict[tuple[str, float, float, float], tuple[Any, float]] = {}

    def add(
        self, query: DpQuery, value: float, sensitivity: float, share: float
    ) -> tuple[float, float]:
        """``value`` plus noise at ``share`` of the query's (ε, δ); returns (noisy value, scale)."""
        key = (query.mechanism, query.epsilon * share, query.delta * share, sensitivity)
        if key not in self._made:
            self._made[key] = self._make(*key)
        mechanism, scale = self._made[key]
        return float(mechanism.randomise(float(value))), scale

    def _make(
        self, kind: str, epsilon: float, delta: float, sensitivity: float
    ) -> tuple[Any, float]:
        mechanisms = _mechanisms()
        if kind == "laplace":
            laplace = mechanisms.Laplace(
                epsilon=epsilon, delta=delta, sensitivity=sensitivity, random_state=self._rng
            )
            return laplace, math.sqrt(laplace.variance(0.0) / 2.0)
        gaussian = mechanisms.GaussianAnalytic(
            epsilon=epsilon, delta=delta, sensitivity=sensitivity, random_state=self._rng
        )
        return gaussian, math.sqrt(gaussian.variance(0.0))


@functools.cache
def _mechanisms() -> ModuleType:
    """diffprivlib's ``mechanisms`` subpackage.

    ``import diffprivlib`` also imports its scikit-learn based models, which break on
    scikit-learn releases newer than the ones diffprivlib was built against (they import private
    names from ``sklearn.tree``). The mechanisms need only numpy, so when that import fails they
    are loaded on their own under a bare, temporary ``diffprivlib`` package entry.
    """
    try:
        return importlib.import_module("diffprivlib.mechanisms")
    except ImportError as e:
        if e.name == "diffprivlib":
            raise
    spec = importlib.util.find_spec("diffprivlib")
    assert spec is not None
    shell = importlib.util.module_from_spec(spec)  # the package, without running its __init__
    sys.modules["diffprivlib"] = shell
    try:
        return importlib.import_module("diffprivlib.mechanisms")
    finally:
        if sys.modules.get("diffprivlib") is shell:
            del sys.modules["diffprivlib"]
