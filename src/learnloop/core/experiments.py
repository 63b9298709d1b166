"""A/B experiment results: traffic, latency and outcomes per arm, with tests that hold up.

Outcomes come from an :class:`OutcomeSource` — a value per prediction id (1/0 for a binary
outcome such as a click or a correct answer, or a number such as a rating). Until the feedback
ledger lands, no source is wired in and results carry traffic and latency only; the feedback
join implements this protocol.

Statistics, each arm against the control arm (the first serving arm):

* binary outcomes: two-proportion z-test; numeric outcomes: Welch's t-test — both fixed-horizon
  p-values, valid for one look at a sample size chosen in advance;
* a mixture sequential probability ratio test (mSPRT, normal mixture with scale ``tau``) whose
  p-value stays valid however often the results are looked at (Johari et al., "Always valid
  inference", 2017): stop when it drops below alpha, at any look.

``tau`` (the scale of effects the sequential test is tuned to) defaults to a tenth of the
outcome's standard deviation.

The recommended winner is the arm with the best outcome mean whose sequential p-value against
control is below alpha; otherwise there is no winner yet. Confidence is ``1 - p``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import mean, variance
from typing import Any, Protocol

from scipy import stats

from learnloop.core.ledger import PredictionRecord


class OutcomeSource(Protocol):
    def outcomes(self, prediction_ids: Sequence[str]) -> Mapping[str, float]:
        """Outcome per prediction id, for the ids that have one."""
        ...


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float


def two_proportion_test(s_a: int, n_a: int, s_b: int, n_b: int) -> TestResult:
    """B − A for success counts ``s`` out of ``n``; pooled z-test, unpooled 95 % CI."""
    p_a, p_b = s_a / n_a, s_b / n_b
    pooled = (s_a + s_b) / (n_a + n_b)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (p_b - p_a) / se0 if se0 > 0 else 0.0
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    p = 2 * float(stats.norm.sf(abs(z)))
    return TestResult(z, p, p_b - p_a, p_b - p_a - 1.96 * se, p_b - p_a + 1.96 * se)


def welch_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """B − A difference of means with Welch's unequal-variance t-test and 95 % CI."""
    va, vb = variance(a) / len(a), variance(b) / len(b)
    se = math.sqrt(va + vb)
    diff = mean(b) - mean(a)
    if se == 0:
        return TestResult(0.0, 1.0 if diff == 0 else 0.0, diff, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = diff / se
    half = float(stats.t.ppf(0.975, df)) * se
    return TestResult(t, 2 * float(stats.t.sf(abs(t), df)), diff, diff - half, diff + half)


def msprt_p_value(diff: float, var_diff: float, tau: float) -> float:
    """Always-valid p-value of H0: no difference, for an estimate ``diff`` with variance
    ``var_diff`` and a N(0, tau²) mixture over effects: p = min(1, 1/Λ),
    Λ = sqrt(V/(V+τ²)) · exp(τ² diff² / (2 V (V+τ²)))."""
    if var_diff <= 0:
        return 1.0
    v, t2 = var_diff, tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * diff * diff / (2 * v * (v + t2))
    return float(min(1.0, math.exp(-log_lambda)))


@dataclass(frozen=True)
class ArmOutcomes:
    values: list[float]

    @property
    def binary(self) -> bool:
        return all(v in (0.0, 1.0) for v in self.values)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def experiment_results(
    records: Iterable[PredictionRecord],
    outcomes: Mapping[str, float],
    *,
    control: str | None,
    alpha: float = 0.05,
    tau: float | None = None,
) -> dict[str, Any]:
    by_arm: dict[str, list[PredictionRecord]] = {}
    for r in records:
        by_arm.setdefault(r.arm, []).append(r)
    arms: dict[str, dict[str, Any]] = {}
    values: dict[str, ArmOutcomes] = {}
    for arm, rows in sorted(by_arm.items()):
        latency = [r.latency_ms for r in rows]
        got = [outcomes[r.id] for r in rows if r.id in outcomes]
        values[arm] = ArmOutcomes(got)
        arms[arm] = {
            "predictions": len(rows),
            "versions": sorted({r.version for r in rows}),
            "fallbacks": sum(1 for r in rows if r.served_by.get("fallback")),
            "latency_ms_p50": _percentile(latency, 0.50),
            "latency_ms_p95": _percentile(latency, 0.95),
            "outcomes": len(got),
            "outcome_mean": mean(got) if got else None,
        }
    control = control if control in arms else (next(iter(arms)) if arms else None)
    comparisons: dict[str, dict[str, Any]] = {}
    for arm in arms:
        if arm == control or control is None:
            continue
        a, b = values[control].values, values[arm].values
        if len(a) < 2 or len(b) < 2:
            comparisons[arm] = {"against": control, "enough_data": False}
            continue
        binary = values[control].binary and values[arm].binary
        if binary:
            fixed = two_proportion_test(int(sum(a)), len(a), int(sum(b)), len(b))
            var_diff = mean(a) * (1 - mean(a)) / len(a) + mean(b) * (1 - mean(b)) / len(b)
        else:
            fixed = welch_test(a, b)
            var_diff = variance(a) / len(a) + variance(b) / len(b)
        scale = (
            tau if tau is not None else max(math.sqrt(var_diff * (len(a) + len(b)) / 2) * 0.1, 1e-9)
        )
        seq_p = msprt_p_value(fixed.effect, var_diff, scale)
        comparisons[arm] = {
            "against": control,
            "enough_data": True,
            "test": "two_proportion_z" if binary else "welch_t",
            "effect": fixed.effect,
            "ci95": [fixed.ci_low, fixed.ci_high],
            "p_value": fixed.p_value,
            "sequential_p_value": seq_p,
            "significant": seq_p < alpha,
        }
    winner, confidence = None, None
    candidates = [(arm, c) for arm, c in comparisons.items() if c.get("significant")]
    if candidates:
        best = max(candidates, key=lambda x: x[1]["effect"])
        if best[1]["effect"] > 0:
            winner, confidence = best[0], 1 - best[1]["sequential_p_value"]
        else:  # every significant arm is worse: the control wins
            winner, confidence = control, 1 - min(c["sequential_p_value"] for _, c in candidates)
    return {
        "control": control,
        "alpha": alpha,
        "arms": arms,
        "comparisons": comparisons,
        "winner": winner,
        "confidence": confidence,
    }
