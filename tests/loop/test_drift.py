"""Drift engine: statistics against scipy and hand computation, verdicts, report, HTML, streams."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from learnloop.core.errors import InvalidInput
from learnloop.loop.drift import (
    ADWIN,
    DriftConfig,
    PageHinkley,
    column_drift,
    drift_html,
    drift_report,
)
from learnloop.loop.drift.stats import chi_square, js_distance, psi


def _normal(seed: int, n: int, mean: float = 0.0, sd: float = 1.0) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(mean, sd, n))


def _levels(seed: int, n: int, probs: list[float]) -> pd.Series:
    levels = np.array(["A", "B", "C", "D"], dtype=object)
    return pd.Series(levels[np.random.default_rng(seed).choice(4, n, p=probs)])


# --- statistics against scipy and by hand ------------------------------------------------------


@pytest.mark.parametrize("discrete", [False, True])
def test_ks_and_wasserstein_match_scipy(discrete: bool) -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(0, 1, 700), rng.normal(0.3, 1.3, 450)
    if discrete:  # many ties
        ref, cur = np.round(ref * 2), np.round(cur * 2)
    result = column_drift(pd.Series(ref), pd.Series(cur))
    ks = stats.ks_2samp(ref, cur, method="asymp")
    assert result["ks"] == pytest.approx(ks.statistic, abs=1e-12)
    assert result["p_value"] == pytest.approx(ks.pvalue, rel=1e-6)
    assert result["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)
    assert result["wasserstein_normed"] == pytest.approx(result["wasserstein"] / ref.std())


def test_js_and_chi_square_match_scipy() -> None:
    ref, cur = np.array([40, 30, 20, 10, 0]), np.array([25, 35, 20, 15, 5])
    assert js_distance(ref, cur) == pytest.approx(jensenshannon(ref / 100, cur / 100), rel=1e-9)
    statistic, p_value, dof = chi_square(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert (statistic, p_value, dof) == pytest.approx(
        (expected.statistic, expected.pvalue, expected.dof)
    )


def test_psi_by_hand() -> None:
    ref, cur = np.array([50, 30, 20, 0]), np.array([40, 30, 20, 10])
    p = np.array([0.5, 0.3, 0.2, 1e-4])  # the empty bin is floored
    q = np.array([0.4, 0.3, 0.2, 0.1])
    assert psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert psi(ref, cur) == pytest.approx(
        (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    )


# --- verdicts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "effect"),
    [
        (_normal(2, 20_000, mean=0.2), "wasserstein_normed"),
        (_normal(2, 20_000, sd=1.2), "wasserstein_normed"),
    ],
    ids=["mean+0.2sd", "sd*1.2"],
)
def test_numeric_shifts_are_detected(current: pd.Series, effect: str) -> None:
    result = column_drift(_normal(1, 20_000), current)
    assert result["kind"] == "numeric" and result["test"] == "ks"
    assert result["drift"] and result["significant"] and result["power_ok"]
    assert result["effect_reason"] == effect
    assert result["effect"] >= 0.1


def test_categorical_level_shift_is_detected_below_evidently_threshold() -> None:
    reference = _levels(1, 20_000, [0.4, 0.3, 0.2, 0.1])
    current = _levels(2, 20_000, [0.32, 0.34, 0.2267, 0.1133])  # A loses 8 pp
    result = column_drift(reference, current)
    assert result["kind"] == "categorical" and result["test"] == "chi_square"
    assert 0.05 <= result["js"] < 0.1  # Evidently's 0.1 would miss it
    assert result["p_value"] < 1e-10
    assert result["drift"]
    assert not column_drift(reference, current, DriftConfig(js_threshold=0.1))["drift"]


def test_same_distribution_at_a_million_rows_is_not_drift() -> None:
    reference, same = _normal(1, 1_000_000), _normal(2, 1_000_000)
    assert not column_drift(reference, same)["drift"]
    tiny = column_drift(reference, _normal(3, 1_000_000, mean=0.02))  # real but trivial
    assert tiny["significant"]  # the p-value alone would flag it
    assert not tiny["effect_over"] and not tiny["drift"]


def test_small_samples_with_large_effect_are_not_flagged() -> None:
    result = column_drift(_normal(1, 20), _normal(2, 20, mean=0.3))
    assert result["effect"] >= 0.1  # the effect alone would flag it
    assert not result["significant"] and not result["drift"]
    assert not result["power_ok"] and result["mde"] > 0.1


def test_missing_values_and_many_categories() -> None:
    numeric = column_drift(pd.Series([1.0, np.nan, 2.0, 3.0, np.inf]), pd.Series([1.0, 2.0]))
    assert numeric["n_reference"] == 3 and numeric["missing_reference"] == pytest.approx(0.4)
    ref = pd.Series([f"l{i % 80}" for i in range(800)] + [None] * 20)
    result = column_drift(ref, ref.iloc[::-1], DriftConfig(max_categories=10))
    assert len(result["histogram"]["levels"]) == 10
    assert "__missing__" in result["histogram"]["levels"][:9]
    assert result["histogram"]["levels"][-1] == "__other__"
    assert not result["drift"]


# --- report and HTML ---------------------------------------------------------------------------


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    n = 5_000
    reference = pd.DataFrame(
        {"x": _normal(1, n), "y": _normal(2, n), "c": _levels(3, n, [0.4, 0.3, 0.2, 0.1])}
    )
    current = pd.DataFrame(
        {"x": _normal(4, n, 0.5), "y": _normal(5, n), "c": _levels(6, n, [0.1, 0.2, 0.3, 0.4])}
    )
    current["pred"] = reference["pred"] = np.where(reference["x"] > 0, "yes", "no")
    return reference, current


def test_report_share_verdict_and_json() -> None:
    reference, current = _frames()
    report = drift_report(reference, current, columns=["x", "y", "c"], prediction_column="pred")
    assert list(report["columns"]) == ["x", "y", "c", "pred"]
    assert report["drifted"] == ["x", "c"]
    assert report["share_drifted"] == 0.5 and report["dataset_drift"]
    assert report["prediction"]["column"] == "pred" and not report["prediction"]["drift"]
    strict = drift_report(reference, current, config=DriftConfig(dataset_share=0.75))
    assert not strict["dataset_drift"]
    json.loads(json.dumps(report))  # JSON-able
    with pytest.raises(InvalidInput, match="nope"):
        drift_report(reference, current, columns=["x", "nope"])


def test_html_shows_every_column_and_no_scripts() -> None:
    reference, current = _frames()
    page = drift_html(drift_report(reference, current))
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "<script" not in page and "http" not in page
    for column in ["x", "y", "c", "pred"]:
        assert f"<td>{column}</td>" in page


# --- streaming detectors -----------------------------------------------------------------------


def _errors(seed: int, rates: list[tuple[float, int]]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([(rng.random(n) < rate).astype(float) for rate, n in rates])


@pytest.mark.parametrize("detector", [PageHinkley, ADWIN])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_detectors_find_a_step_in_the_error_rate(detector: type, seed: int) -> None:
    stream = _errors(seed, [(0.1, 3000), (0.4, 1000)])
    d = detector()
    alarms = [i for i, x in enumerate(stream) if d.update(x)]
    assert alarms, "the step was missed"
    assert 3000 <= alarms[0] < 3400  # no false alarm before it, found within 400 values


@pytest.mark.parametrize("detector", [PageHinkley, ADWIN])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_detectors_stay_quiet_on_a_stationary_stream(detector: type, seed: int) -> None:
    d = detector()
    assert not any(d.update(x) for x in _errors(seed, [(0.1, 10_000)]))


def test_page_hinkley_direction() -> None:
    falling = _errors(0, [(0.4, 1000), (0.1, 1000)])
    up, down = PageHinkley(direction="up"), PageHinkley(direction="down")
    assert not any(up.update(x) for x in falling)
    assert any(down.update(x) for x in falling)
