"""The statistics behind a drift verdict, on plain numpy arrays of one column.

Numeric columns are sorted once per side; everything else comes from the two sorted arrays:

* the pooled sorted sample is a stable merge of the two sorted runs (``argsort(kind="stable")``
  on their concatenation is a single O(n) timsort merge); a running count of which side each
  pooled value came from gives both empirical CDFs at every pooled value;
* the Kolmogorov–Smirnov statistic is the largest CDF gap there, its p-value Smirnov's asymptotic
  distribution (``scipy.stats.kstwo`` at ``round(n·m / (n + m))``, as ``ks_2samp(method="asymp")``);
* the Wasserstein-1 distance is the area between the CDFs (gap × width of each pooled interval),
  as ``scipy.stats.wasserstein_distance``;
* the PSI bins are reference quantiles, their counts ``searchsorted`` on the sorted arrays.

Categorical columns are counted once per side (``value_counts``); the chi-square homogeneity test,
the Jensen–Shannon distance and the PSI all come from the two count vectors.

Power (``power_ok``, the minimum detectable effect ``mde``) is an approximation, stated in the
unit of the column's effect size:

* numeric: a normal location shift of ``δ`` reference standard deviations has Wasserstein
  (normed) ``δ`` and a KS statistic of about ``φ(0)·δ ≈ 0.40·δ``; the test rejects at level α
  once the statistic passes ``c(α)/√n_eff`` (``c(α) = √(−ln(α/2)/2)``, ``n_eff = n·m/(n+m)``), and
  the estimate's noise near the median is about ``0.5/√n_eff``. So
  ``mde = (c(α) + z_power·0.5) / (φ(0)·√n_eff)``;
* categorical: the chi-square statistic is non-central with ``λ ≈ n_eff·Σ(p−q)²/p̄`` and, for
  small shifts, ``Σ(p−q)²/p̄ ≈ 8·JS²``; ``mde`` is the JS distance whose ``λ`` gives the asked
  power at ``k − 1`` degrees of freedom.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

Array = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

STD_FLOOR = 0.001  # Wasserstein is divided by max(reference std, this), as Evidently does


def finite_sorted(values: Array) -> tuple[Array, int]:
    """The finite values of ``values`` sorted ascending, and how many were NaN or infinite."""
    ordered = np.sort(values)  # NaN sorts last, -inf first, +inf just before NaN
    lo = int(np.searchsorted(ordered, -np.inf, side="right"))
    hi = int(np.searchsorted(ordered, np.inf, side="left"))
    return ordered[lo:hi], len(ordered) - (hi - lo)


def cdf_gaps(ref_sorted: Array, cur_sorted: Array) -> tuple[float, float]:
    """(KS statistic, Wasserstein-1 distance) of two non-empty sorted samples, exactly.

    Both are read off ``F_ref − F_cur`` evaluated at the last copy of each distinct pooled value.
    """
    n, m = len(ref_sorted), len(cur_sorted)
    pooled = np.concatenate([ref_sorted, cur_sorted])
    order = np.argsort(pooled, kind="stable")  # two sorted runs: one linear merge
    pooled = pooled[order]
    from_cur = np.cumsum(order >= n)
    del order
    gap = (np.arange(1, n + m + 1) - from_cur) / n - from_cur / m
    del from_cur
    widths = np.diff(pooled)
    gap = np.abs(gap[:-1])
    if not widths.all():  # ties: only the last copy of a value carries the CDF there
        ends = widths != 0
        gap, widths = gap[ends], widths[ends]
    if gap.size == 0:
        return 0.0, 0.0
    return float(gap.max()), float(np.dot(gap, widths))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS statistic (scipy's "asymp" method)."""
    en = round(n * m / (n + m))
    return float(stats.kstwo.sf(statistic, max(en, 1)))


def quantile_edges(ref_sorted: Array, bins: int) -> Array:
    """Interior bin edges at the reference's quantiles; ties collapse bins, so maybe fewer."""
    positions = np.linspace(0, len(ref_sorted) - 1, bins + 1)[1:-1].round().astype(np.int64)
    edges: Array = np.unique(ref_sorted[positions])
    return edges


def bin_counts(sorted_values: Array, interior_edges: Array) -> Counts:
    """Counts of a sorted sample in ``(-inf, e1], (e1, e2], …, (ek, inf)``."""
    cuts = np.searchsorted(sorted_values, interior_edges, side="right")
    return np.diff(np.concatenate([[0], cuts, [len(sorted_values)]]))


def psi(ref_counts: Counts, cur_counts: Counts, floor: float = 1e-4) -> float:
    """Population stability index ``Σ (q − p)·ln(q / p)`` with proportions floored at ``floor``."""
    p = np.maximum(ref_counts / max(ref_counts.sum(), 1), floor)
    q = np.maximum(cur_counts / max(cur_counts.sum(), 1), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def sample_psi(reference: Array, current: Array, bins: int = 10, floor: float = 1e-4) -> float:
    """PSI of two raw samples over ``bins`` quantile bins of the reference (open-ended end bins;
    NaN and infinities left out). 0 when either side is empty."""
    ref, _ = finite_sorted(np.asarray(reference, dtype=float))
    cur, _ = finite_sorted(np.asarray(current, dtype=float))
    if not len(ref) or not len(cur):
        return 0.0
    edges = quantile_edges(ref, bins)
    return psi(bin_counts(ref, edges), bin_counts(cur, edges), floor)


def js_distance(ref_counts: Counts, cur_counts: Counts) -> float:
    """Jensen–Shannon distance (natural log), as ``scipy.spatial.distance.jensenshannon``."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / mid), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / mid), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def chi_square(ref_counts: Counts, cur_counts: Counts) -> tuple[float, float, int]:
    """(statistic, p-value, degrees of freedom) of the 2×k homogeneity test, no continuity fix.

    Levels empty on both sides are dropped; fewer than two levels left gives (0, 1, 0).
    """
    keep = (ref_counts + cur_counts) > 0
    observed = np.vstack([ref_counts[keep], cur_counts[keep]]).astype(np.float64)
    if observed.shape[1] < 2:
        return 0.0, 1.0, 0
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0) / observed.sum()
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = observed.shape[1] - 1
    return statistic, float(stats.chi2.sf(statistic, dof)), dof


def effective_n(n: int, m: int) -> float:
    return n * m / (n + m) if n and m else 0.0


def numeric_mde(n: int, m: int, alpha: float, power: float) -> float:
    """Smallest normal location shift (in reference stds) the KS test finds with ``power``."""
    n_eff = effective_n(n, m)
    if n_eff == 0:
        return math.inf
    c_alpha = math.sqrt(-math.log(alpha / 2) / 2)
    z_power = float(stats.norm.ppf(power))
    return (c_alpha + 0.5 * z_power) / (float(stats.norm.pdf(0.0)) * math.sqrt(n_eff))


def categorical_mde(n: int, m: int, levels: int, alpha: float, power: float) -> float:
    """Smallest JS distance the chi-square test finds with ``power`` (small-shift approximation)."""
    n_eff = effective_n(n, m)
    if n_eff == 0 or levels < 2:
        return math.inf
    dof = levels - 1
    critical = float(stats.chi2.isf(alpha, dof))

    def shortfall(lam: float) -> float:
        return float(stats.ncx2.sf(critical, dof, lam)) - power

    upper = 10.0 + critical
    while shortfall(upper) < 0:
        upper *= 2
    lam = float(optimize.brentq(shortfall, 1e-9, upper, xtol=1e-6))
    return math.sqrt(lam / (8 * n_eff))


def numeric_statistics(
    ref_sorted: Array, cur_sorted: Array, bins: int, floor: float
) -> dict[str, Any]:
    """KS, Wasserstein (raw and normed), PSI and the PSI histogram of two sorted samples."""
    n, m = len(ref_sorted), len(cur_sorted)
    ks, wasserstein = cdf_gaps(ref_sorted, cur_sorted)
    std = float(ref_sorted.std())
    edges = quantile_edges(ref_sorted, bins)
    ref_counts = bin_counts(ref_sorted, edges)
    cur_counts = bin_counts(cur_sorted, edges)
    low = min(ref_sorted[0], cur_sorted[0])
    high = max(ref_sorted[-1], cur_sorted[-1])
    return {
        "ks": ks,
        "p_value": ks_pvalue(ks, n, m),
        "wasserstein": wasserstein,
        "wasserstein_normed": wasserstein / max(std, STD_FLOOR),
        "psi": psi(ref_counts, cur_counts, floor),
        "reference_mean": float(ref_sorted.mean()),
        "current_mean": float(cur_sorted.mean()),
        "reference_std": std,
        "current_std": float(cur_sorted.std()),
        "histogram": {
            "edges": [float(low), *map(float, edges), float(high)],
            "reference": (ref_counts / n).tolist(),
            "current": (cur_counts / m).tolist(),
        },
    }
