"""Experiment statistics against scipy's reference tests, the sequential test's validity under
repeated looks, and per-arm results from ledger records."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from learnloop.core.experiments import (
    experiment_results,
    msprt_p_value,
    two_proportion_test,
    welch_test,
)
from learnloop.core.ids import new_id
from learnloop.core.ledger import PredictionRecord


def test_two_proportion_z_matches_the_chi_square_test() -> None:
    result = two_proportion_test(120, 1000, 150, 1000)
    chi2, p, _, _ = stats.chi2_contingency([[120, 880], [150, 850]], correction=False)
    assert result.statistic**2 == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)
    assert result.effect == pytest.approx(0.03) and result.ci_low < 0.03 < result.ci_high


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 80), rng.normal(0.4, 2, 50)
    result = welch_test(list(a), list(b))
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


def looks_reject(rng: np.random.Generator, effect: float, looks: int, sequential: bool) -> bool:
    a = rng.binomial(1, 0.3, 100 * looks)
    b = rng.binomial(1, 0.3 + effect, 100 * looks)
    for k in range(1, looks + 1):
        n = 100 * k
        pa, pb = a[:n].mean(), b[:n].mean()
        var = pa * (1 - pa) / n + pb * (1 - pb) / n
        if sequential:
            p = msprt_p_value(pb - pa, var, tau=0.05)
        else:
            p = two_proportion_test(int(a[:n].sum()), n, int(b[:n].sum()), n).p_value
        if p < 0.05:
            return True
    return False


def test_sequential_p_stays_valid_under_repeated_looks_where_naive_peeking_does_not() -> None:
    rng = np.random.default_rng(1)
    runs, looks = 400, 20
    sequential = sum(looks_reject(rng, 0.0, looks, True) for _ in range(runs)) / runs
    naive = sum(looks_reject(rng, 0.0, looks, False) for _ in range(runs)) / runs
    assert sequential <= 0.05  # always-valid: the error rate holds across 20 looks
    assert naive > 0.12  # peeking at a fixed-horizon test inflates it (about 0.2 here)
    power = sum(looks_reject(rng, 0.08, looks, True) for _ in range(100)) / 100
    assert power > 0.8


def record(arm: str, version: str, latency: float) -> PredictionRecord:
    return PredictionRecord(
        id=new_id(),
        model="m",
        version=version,
        arm=arm,
        subject_id=None,
        input_hash="h",
        inputs=None,
        output={"prediction": 1},
        latency_ms=latency,
        cache_hit=False,
        served_by={"version": version, "fallback": False},
        created_at=datetime.now(UTC),
    )


def test_results_per_arm_with_a_recommended_winner() -> None:
    rng = np.random.default_rng(2)
    records = [record("a", "1", 2.0) for _ in range(3000)] + [
        record("b", "2", 3.0) for _ in range(3000)
    ]
    outcomes = {r.id: float(rng.random() < (0.20 if r.arm == "a" else 0.26)) for r in records}
    body = experiment_results(records, outcomes, control="a")
    assert body["arms"]["a"]["predictions"] == 3000 and body["arms"]["b"]["versions"] == ["2"]
    assert body["arms"]["b"]["latency_ms_p50"] == 3.0
    comparison = body["comparisons"]["b"]
    assert comparison["test"] == "two_proportion_z" and comparison["significant"] is True
    assert comparison["ci95"][0] < comparison["effect"] < comparison["ci95"][1]
    assert body["winner"] == "b" and body["confidence"] > 0.95
    no_outcomes = experiment_results(records, {}, control="a")
    assert no_outcomes["winner"] is None
    assert no_outcomes["comparisons"]["b"] == {"against": "a", "enough_data": False}
