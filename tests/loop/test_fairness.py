"""Fairness report: known answers, agreement with fairlearn, small groups, intervals, bounds."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    false_positive_rate_difference,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from learnloop.core.errors import InvalidInput
from learnloop.loop.fairness import FairnessConfig, check_bounds, fairness_report
from learnloop.loop.fairness.bootstrap import confusion_cells, headline_statistics

AI4I = (
    Path(__file__).resolve().parents[2].parent
    / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
)
FAST = FairnessConfig(n_boot=200)


def block(n: int, positives: int, true_pos: int, false_pos: int) -> tuple[list[int], list[int]]:
    """Labels and predictions of one group with exactly the given confusion counts."""
    negatives = n - positives
    y_true = [1] * positives + [0] * negatives
    y_pred = [1] * true_pos + [0] * (positives - true_pos)
    y_pred += [1] * false_pos + [0] * (negatives - false_pos)
    return y_true, y_pred


def groups_of(*blocks: tuple[str, tuple[list[int], list[int]]]) -> tuple[list, list, pd.DataFrame]:
    """Concatenate named blocks into labels, predictions and a one-column ``group`` frame."""
    y_true = [v for _, (t, _) in blocks for v in t]
    y_pred = [v for _, (_, p) in blocks for v in p]
    names = [name for name, (t, _) in blocks for _ in t]
    return y_true, y_pred, pd.DataFrame({"group": names})


def test_selection_rates_of_60_and_30_percent_give_gap_03_and_ratio_05() -> None:
    y_true, y_pred, sensitive = groups_of(
        ("A", block(100, 50, 30, 30)), ("B", block(100, 50, 15, 15))
    )
    report = fairness_report(y_true, y_pred, sensitive, config=FAST)
    groups = report["attributes"]["group"]["groups"]
    assert groups["A"]["selection_rate"] == pytest.approx(0.6)
    assert groups["B"]["selection_rate"] == pytest.approx(0.3)
    metrics = report["attributes"]["group"]["metrics"]
    assert metrics["demographic_parity_difference"]["value"] == pytest.approx(0.3)
    assert metrics["demographic_parity_ratio"]["value"] == pytest.approx(0.5)
    assert metrics["equal_opportunity_difference"]["value"] == pytest.approx(0.3)
    assert report["overall"]["selection_rate"] == pytest.approx(0.45)
    json.dumps(report, allow_nan=False)


def test_equal_error_rates_give_zero_odds_gap_despite_unequal_selection() -> None:
    y_true, y_pred, sensitive = groups_of(
        ("A", block(100, 50, 40, 10)), ("B", block(100, 20, 16, 16))
    )
    metrics = fairness_report(y_true, y_pred, sensitive, config=FAST)["attributes"]["group"]
    metrics = metrics["metrics"]
    assert metrics["equalized_odds_difference"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["equal_opportunity_difference"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["demographic_parity_difference"]["value"] == pytest.approx(0.5 - 0.32)


def test_numbers_agree_with_fairlearn() -> None:
    rng = np.random.default_rng(3)
    n = 900
    group = rng.choice(["a", "b", "c"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < np.select([group == "a", group == "b"], [0.7, 0.4], 0.5)).astype(int)
    report = fairness_report(y_true, y_pred, pd.DataFrame({"g": group}), config=FAST)
    metrics = report["attributes"]["g"]["metrics"]
    for name, function in [
        ("demographic_parity_difference", demographic_parity_difference),
        ("demographic_parity_ratio", demographic_parity_ratio),
        ("equalized_odds_difference", equalized_odds_difference),
        ("equal_opportunity_difference", equal_opportunity_difference),
    ]:
        expected = function(y_true, y_pred, sensitive_features=group)
        assert metrics[name]["value"] == pytest.approx(expected, abs=1e-12), name
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=group,
    ).by_group
    for label, row in frame.iterrows():
        stats = report["attributes"]["g"]["groups"][label]
        assert stats["selection_rate"] == pytest.approx(row["selection_rate"])
        assert stats["tpr"] == pytest.approx(row["tpr"])


def test_bootstrap_statistic_of_the_observed_cells_is_fairlearns_value() -> None:
    rng = np.random.default_rng(5)
    group = rng.choice(["a", "b", "c"], 600)
    y_true = rng.integers(0, 2, 600)
    y_pred = rng.integers(0, 2, 600)
    cells = np.stack([confusion_cells(y_true[group == g], y_pred[group == g]) for g in "abc"])
    everyone = np.ones(3, dtype=bool)
    statistics = headline_statistics(cells[None], everyone, everyone)
    expected = equalized_odds_difference(y_true, y_pred, sensitive_features=group)
    assert statistics["equalized_odds_difference"][0] == pytest.approx(expected)
    expected = demographic_parity_ratio(y_true, y_pred, sensitive_features=group)
    assert statistics["demographic_parity_ratio"][0] == pytest.approx(expected)


def test_small_groups_are_reported_and_left_out_of_the_headline() -> None:
    y_true, y_pred, sensitive = groups_of(
        ("A", block(100, 50, 30, 30)), ("B", block(100, 50, 15, 15)), ("C", block(10, 5, 0, 0))
    )
    report = fairness_report(y_true, y_pred, sensitive, config=FAST)
    entry = report["attributes"]["group"]
    small = entry["groups"]["C"]
    assert (small["count"], small["selection_rate"], small["too_small"]) == (10, 0.0, True)
    assert not entry["groups"]["A"]["too_small"]
    assert entry["small_groups"] == ["C"]
    assert entry["compared_groups"] == ["A", "B"]
    assert report["small_groups"] == [{"attribute": "group", "group": "C", "count": 10}]
    assert entry["metrics"]["demographic_parity_difference"]["value"] == pytest.approx(0.3)
    assert any("'C' has 10 rows" in note for note in entry["notes"])


def test_fewer_than_two_large_groups_leave_the_headline_empty() -> None:
    y_true, y_pred, sensitive = groups_of(("A", block(100, 50, 30, 30)), ("B", block(10, 5, 1, 1)))
    report = fairness_report(y_true, y_pred, sensitive, config=FAST)
    metrics = report["attributes"]["group"]["metrics"]
    assert all(m == {"value": None, "ci_low": None, "ci_high": None} for m in metrics.values())
    verdicts = check_bounds(report, {"demographic_parity_difference": 0.1})
    assert verdicts[0]["passed"] is None and verdicts[0]["strict_passed"] is None


def test_intersections_have_the_crosstab_counts() -> None:
    rng = np.random.default_rng(1)
    sensitive = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], 500), "age": rng.choice(["young", "old"], 500)}
    )
    sensitive["region"] = rng.choice(["n", "s"], 500)
    y = rng.integers(0, 2, 500)
    report = fairness_report(y, 1 - y, sensitive, config=FairnessConfig(n_boot=0))
    names = list(report["attributes"])
    assert names == ["sex", "age", "region", "sex & age", "sex & region", "age & region"] + [
        "sex & age & region"
    ]
    groups = report["attributes"]["sex & age"]["groups"]
    crosstab = pd.crosstab(sensitive["sex"], sensitive["age"])
    for sex in ["F", "M"]:
        for age in ["young", "old"]:
            entry = groups[f"{sex} & {age}"]
            assert entry["count"] == crosstab.loc[sex, age]
            assert entry["values"] == {"sex": sex, "age": age}
    three = report["attributes"]["sex & age & region"]["groups"]
    assert sum(g["count"] for g in three.values()) == 500
    flat = fairness_report(y, y, sensitive, config=FairnessConfig(n_boot=0, intersectional=False))
    assert list(flat["attributes"]) == ["sex", "age", "region"]


def test_interval_covers_the_true_gap_and_is_fixed_by_the_seed() -> None:
    rng = np.random.default_rng(11)
    group = np.repeat(["A", "B"], 2000)
    y_true = rng.integers(0, 2, 4000)
    y_pred = (rng.random(4000) < np.where(group == "A", 0.6, 0.3)).astype(int)
    sensitive = pd.DataFrame({"g": group})
    report = fairness_report(y_true, y_pred, sensitive, config=FairnessConfig(n_boot=300))
    gap = report["attributes"]["g"]["metrics"]["demographic_parity_difference"]
    assert gap["ci_low"] < 0.3 < gap["ci_high"]
    assert gap["ci_low"] <= gap["value"] <= gap["ci_high"]
    assert gap["ci_high"] - gap["ci_low"] < 0.1
    again = fairness_report(y_true, y_pred, sensitive, config=FairnessConfig(n_boot=300))
    assert again == report
    other = fairness_report(y_true, y_pred, sensitive, config=FairnessConfig(n_boot=300, seed=1))
    assert other["attributes"]["g"]["metrics"] != report["attributes"]["g"]["metrics"]


def test_check_bounds_verdicts() -> None:
    y_true, y_pred, sensitive = groups_of(
        ("A", block(200, 100, 60, 60)), ("B", block(200, 100, 30, 30))
    )
    report = fairness_report(y_true, y_pred, sensitive, config=FAST)
    bounds = {"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.15}
    bounds |= {"demographic_parity_ratio": 0.4}
    verdicts = {v["metric"]: v for v in check_bounds(report, bounds)}
    dpd = verdicts["demographic_parity_difference"]
    assert dpd["passed"] is True and dpd["strict_passed"] is False
    assert dpd["ci_high"] > 0.3 and dpd["bound"] == 0.3 and dpd["attribute"] == "group"
    assert verdicts["equalized_odds_difference"]["passed"] is False
    ratio = verdicts["demographic_parity_ratio"]
    assert ratio["direction"] == "at_least" and ratio["passed"] is True
    assert check_bounds(report, bounds, attributes=["other"]) == []
    with pytest.raises(InvalidInput, match="unknown fairness metric"):
        check_bounds(report, {"parity": 0.1})


def test_group_without_positives_has_undefined_tpr_and_is_left_out_of_that_gap() -> None:
    y_true, y_pred, sensitive = groups_of(
        ("A", block(100, 50, 40, 10)), ("B", block(100, 0, 0, 30)), ("C", block(100, 40, 20, 12))
    )
    report = fairness_report(y_true, y_pred, sensitive, config=FAST)
    entry = report["attributes"]["group"]
    assert entry["groups"]["B"]["tpr"] is None and entry["groups"]["B"]["positives"] == 0
    assert any("'B' has no actual positives" in note for note in entry["notes"])
    y_true, y_pred, group = np.array(y_true), np.array(y_pred), sensitive["group"].to_numpy()
    keep = group != "B"
    opportunity = equal_opportunity_difference(
        y_true[keep], y_pred[keep], sensitive_features=group[keep]
    )
    assert opportunity == pytest.approx(0.8 - 0.5)
    fpr_gap = false_positive_rate_difference(y_true, y_pred, sensitive_features=group)
    metrics = entry["metrics"]
    assert metrics["equal_opportunity_difference"]["value"] == pytest.approx(opportunity)
    assert metrics["equalized_odds_difference"]["value"] == pytest.approx(max(opportunity, fpr_gap))
    assert metrics["equal_opportunity_difference"]["ci_high"] is not None
    json.dumps(report, allow_nan=False)


def test_positive_label_and_missing_sensitive_values() -> None:
    y_true = ["yes"] * 40 + ["no"] * 40
    y_pred = ["yes"] * 30 + ["no"] * 50
    sensitive = pd.DataFrame({"site": [None] * 40 + ["north"] * 40}, index=range(100, 180))
    report = fairness_report(y_true, y_pred, sensitive, positive="yes", config=FAST)
    groups = report["attributes"]["site"]["groups"]
    assert groups["(missing)"]["selection_rate"] == pytest.approx(0.75)
    assert groups["north"]["selection_rate"] == 0.0 and groups["north"]["tpr"] is None
    assert report["positive"] == "yes"


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="lengths disagree"):
        fairness_report([1, 0], [1, 0, 1], pd.DataFrame({"g": ["a", "b"]}))
    with pytest.raises(InvalidInput, match="at least one column"):
        fairness_report([1], [1], pd.DataFrame(index=[0]))
    with pytest.raises(InvalidInput, match="alpha"):
        FairnessConfig(alpha=1.5)


@pytest.mark.skipif(not AI4I.exists(), reason="AI4I data set not present")
def test_ai4i_report_matches_metricframe() -> None:
    data = pd.read_csv(AI4I, encoding="utf-8-sig")
    target = data["Machine failure"]
    features = data.drop(
        columns=["UDI", "Product ID", "Machine failure", "TWF", "HDF", "PWF", "OSF", "RNF"]
    )
    features.columns = [name.split(" [")[0].replace(" ", "_") for name in features.columns]
    features["Type"] = features["Type"].astype("category")
    train_x, test_x, train_y, test_y = train_test_split(
        features, target, test_size=0.4, random_state=0, stratify=target
    )
    model = lgb.LGBMClassifier(n_estimators=80, random_state=0, verbose=-1).fit(train_x, train_y)
    predicted = model.predict(test_x)
    sensitive = test_x[["Type"]].astype(str)
    report = fairness_report(test_y, predicted, sensitive, config=FAST)
    direct = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=test_y,
        y_pred=predicted,
        sensitive_features=sensitive["Type"],
    )
    groups = report["attributes"]["Type"]["groups"]
    assert set(groups) == {"L", "M", "H"}
    for label, row in direct.by_group.iterrows():
        for metric in ["count", "selection_rate", "tpr", "fpr", "accuracy"]:
            assert groups[label][metric] == pytest.approx(row[metric]), (label, metric)
    assert report["overall"]["accuracy"] == pytest.approx(direct.overall["accuracy"])
    metrics = report["attributes"]["Type"]["metrics"]
    expected = equalized_odds_difference(test_y, predicted, sensitive_features=sensitive["Type"])
    assert metrics["equalized_odds_difference"]["value"] == pytest.approx(expected)
    assert 0 < metrics["equalized_odds_difference"]["ci_high"] <= 1
