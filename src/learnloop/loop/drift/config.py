"""How a drift verdict is reached: thresholds for effect sizes, the test level, the binning.

A column drifts when **both** hold:

* an effect size is at or over its threshold — for numeric columns the Wasserstein distance
  normalised by the reference standard deviation (``wasserstein_threshold``, 0.1: Evidently's
  default, so verdicts are comparable) or the population stability index (``psi_threshold``, 0.2,
  the usual "significant shift" mark); for categorical columns the Jensen–Shannon distance
  (``js_threshold``) or the PSI;
* the two-sample test is significant at ``alpha`` — Kolmogorov–Smirnov for numeric columns,
  chi-square homogeneity for categorical ones.

The effect gate keeps very large windows from flagging differences too small to matter (at a
million rows almost every p-value is tiny); the significance gate keeps small windows from
flagging sampling noise (a 50-row window has large effect sizes by chance).

Why ``js_threshold`` is 0.05 and not Evidently's 0.1: for small shifts the Jensen–Shannon
distance is about ``w / (2·√2)``, where ``w`` is Cohen's effect size for proportions
(``w² = Σ (p_cur − p_ref)² / p_ref``). A threshold of 0.1 therefore needs ``w ≈ 0.28``, almost a
"medium" effect, and misses a level losing 8 percentage points of a four-level column (JS ≈ 0.07).
0.05 means ``w ≈ 0.14``, between Cohen's "small" (0.1) and "medium" (0.3) — the same order of
sensitivity as 0.1 standard deviations on numeric columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds and knobs of the drift engine (see the module docstring for the verdict rule).

    All fields are plain numbers so a config round-trips through JSON (``dataclasses.asdict``).
    """

    wasserstein_threshold: float = 0.1
    """Numeric effect: Wasserstein-1 distance divided by the reference std (floored at 0.001)."""

    psi_threshold: float = 0.2
    """Population stability index over ``bins`` reference-quantile bins (or the categories)."""

    js_threshold: float = 0.05
    """Categorical effect: Jensen–Shannon distance (natural log, so at most √ln 2 ≈ 0.83)."""

    alpha: float = 0.05
    """Significance level of the KS / chi-square test; the p-value must be below it."""

    power: float = 0.8
    """Power asked of the test at the threshold effect; ``power_ok`` reports whether it is met."""

    max_categories: int = 50
    """Categorical levels kept, most frequent in the reference first; the rest become one
    ``__other__`` level (missing values are their own ``__missing__`` level)."""

    bins: int = 20
    """Reference-quantile bins for the numeric PSI and the histograms of the HTML report."""

    psi_floor: float = 1e-4
    """Bin proportions are floored at this value inside the PSI logarithm (empty bins)."""

    dataset_share: float = 0.5
    """The dataset drifts when at least this share of its columns drift (Evidently's 0.5)."""

    n_jobs: int = 0
    """Threads computing columns in parallel; 0 means one per usable CPU core."""
