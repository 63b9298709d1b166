"""Evaluation: metrics against scikit-learn and hand computations, the paired bootstrap and the
regression gate (on the real AI4I 2020 data), and the latency profile."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.model_selection import train_test_split

from learnloop.core.errors import InvalidInput
from learnloop.core.fitting import LocalFitContext
from learnloop.families.tabular import TabularFamily
from learnloop.loop.evaluation import (
    GATE_METRICS,
    RESAMPLED_METRICS,
    classification_metrics,
    forecasting_metrics,
    latency_profile,
    metrics_for,
    paired_bootstrap,
    ranking_metrics,
    regression_gate,
    regression_metrics,
)

AI4I = (
    Path(__file__).resolve().parents[2].parent
    / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
)
FAILURE = "Machine failure"
NOT_FEATURES = ["UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"]


def noisy_binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0/1 and positive-class probabilities that are informative but imperfect."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(0.3 * y + 0.7 * rng.random(n), 0.01, 0.99)


# --- classification ------------------------------------------------------------------------


def test_binary_metrics_match_sklearn_with_string_labels_and_ties() -> None:
    y01, p1 = noisy_binary(400)
    p1 = np.round(p1, 1)  # many tied scores
    labels = np.array(["ok", "fail"])[y01]
    got = classification_metrics(labels, np.column_stack([1 - p1, p1]), ["ok", "fail"])
    predicted = (p1 > 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y01, predicted))
    assert got["precision"] == pytest.approx(sk.precision_score(y01, predicted))
    assert got["recall"] == pytest.approx(sk.recall_score(y01, predicted))
    assert got["f1"] == pytest.approx(sk.f1_score(y01, predicted))
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y01, p1))
    assert got["pr_auc"] == pytest.approx(sk.average_precision_score(y01, p1))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y01, p1))
    assert got["brier"] == pytest.approx(sk.brier_score_loss(y01, p1))
    assert classification_metrics(labels, p1, ["ok", "fail"]) == got  # 1-D = P(classes[1])


def test_multiclass_metrics_match_sklearn_macro() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = classification_metrics(y, p, [0, 1, 2])
    predicted = p.argmax(axis=1)
    onehot = np.eye(3)[y]
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    for name, fn in (("precision", sk.precision_score), ("recall", sk.recall_score)):
        assert got[name] == pytest.approx(fn(y, predicted, average="macro"))
    assert got["f1"] == pytest.approx(sk.f1_score(y, predicted, average="macro"))
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p, multi_class="ovr"))
    assert got["pr_auc"] == pytest.approx(sk.average_precision_score(onehot, p, average="macro"))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p))
    assert got["brier"] == pytest.approx(np.mean(((p - onehot) ** 2).sum(axis=1)))


def test_ece_is_zero_when_calibrated_and_large_when_overconfident() -> None:
    # top-class probability 0.8 with 8 of 10 right, 0.6 with 3 of 5 right: perfectly calibrated
    p1 = np.array([0.8] * 10 + [0.6] * 5)
    y = np.array([1] * 8 + [0] * 2 + [1] * 3 + [0] * 2)
    assert classification_metrics(y, p1, [0, 1])["ece"] == pytest.approx(0.0, abs=1e-12)
    # 0.99 sure, right half the time: ECE = |0.5 - 0.99| = 0.49
    sure = classification_metrics([0, 1] * 10, np.full(20, 0.99), [0, 1])
    assert sure["ece"] == pytest.approx(0.49) and sure["ece"] > 0.2


def test_ece_by_hand_with_two_bins() -> None:
    # top probabilities 0.3/0.7 (bin 2), 0.55 (bin 2), 0.9 (bin 2)... with 2 bins all > 0.5
    p1 = np.array([0.7, 0.55, 0.9, 0.2])  # top-class conf: 0.7, 0.55, 0.9, 0.8
    y = np.array([1, 0, 1, 0])  # correct: 1, 0, 1, 1
    expected = abs((1 + 0 + 1 + 1) - (0.7 + 0.55 + 0.9 + 0.8)) / 4
    assert classification_metrics(y, p1, [0, 1], n_bins=2)["ece"] == pytest.approx(expected)
    ten_bins = (abs(0 - 0.55) + abs(1 - 0.7) + abs(1 - 0.8) + abs(1 - 0.9)) / 4
    assert classification_metrics(y, p1, [0, 1], n_bins=10)["ece"] == pytest.approx(ten_bins)


def test_undefined_metrics_are_left_out_and_bad_input_rejected() -> None:
    one_class = classification_metrics([1, 1, 1], np.array([0.9, 0.8, 0.7]), [0, 1])
    assert "roc_auc" not in one_class and "pr_auc" in one_class
    assert one_class["accuracy"] == 1.0
    with pytest.raises(InvalidInput, match="labels not in classes"):
        classification_metrics(["a", "z"], np.array([0.5, 0.5]), ["a", "b"])
    with pytest.raises(InvalidInput, match="probabilities"):
        classification_metrics([0, 1], np.ones((2, 3)) / 3, [0, 1])
    with pytest.raises(InvalidInput, match="outside"):
        classification_metrics([0, 1], np.array([0.5, 1.5]), [0, 1])


# --- regression, ranking, forecasting ------------------------------------------------------


def test_regression_metrics_match_sklearn_and_mape_skips_zero_targets() -> None:
    y = np.array([0.0, 2.0, 4.0, -5.0, 10.0])
    y_hat = np.array([1.0, 2.5, 3.0, -4.0, 12.0])
    got = regression_metrics(y, y_hat)
    assert got["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(y, y_hat)))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, y_hat))
    assert got["r2"] == pytest.approx(sk.r2_score(y, y_hat))
    assert got["mape"] == pytest.approx((0.5 / 2 + 1 / 4 + 1 / 5 + 2 / 10) / 4)
    assert set(regression_metrics([0.0, 0.0], [1.0, 1.0])) == {"rmse", "mae"}


def test_ndcg_matches_sklearn_including_ties_and_recall_mrr_by_hand() -> None:
    rng = np.random.default_rng(2)
    relevance = rng.integers(0, 4, size=(20, 12)).astype(float)
    relevance[:, 0] = 1.0  # every query has a relevant item
    scores = np.round(rng.random((20, 12)), 1)  # ties
    for k in (1, 3, 10, 12):
        got = ranking_metrics(relevance.tolist(), scores.tolist(), k=k)
        assert got[f"ndcg@{k}"] == pytest.approx(sk.ndcg_score(relevance, scores, k=k))
    by_hand = ranking_metrics(
        [[0, 1, 0, 1], [1, 0, 0], [0, 0]], [[4, 3, 2, 1], [1, 3, 2], [1, 2]], k=2
    )
    # query 1: relevant at ranks 2 and 4 → recall@2 1/2, rr 1/2; query 2: rank 3 → 0, 1/3;
    # query 3 has no relevant item and is skipped
    assert by_hand["recall@2"] == pytest.approx((0.5 + 0.0) / 2)
    assert by_hand["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    with pytest.raises(InvalidInput, match="no query"):
        ranking_metrics([[0, 0]], [[1, 2]])


def test_forecasting_mase_smape_and_coverage_by_hand() -> None:
    history = [1.0, 3.0, 2.0, 4.0, 3.0, 5.0]  # season 2 naive errors: 1, 1, 1, 1 → scale 1
    truth = [4.0, 6.0, 0.0]
    forecast = [5.0, 6.0, 0.0]
    got = forecasting_metrics(
        truth, forecast, y_train=history, season=2, lower=[3, 6.5, -1], upper=[5, 7, 1]
    )
    assert got["mae"] == pytest.approx(1 / 3)
    assert got["mase"] == pytest.approx((1 / 3) / 1.0)
    assert got["smape"] == pytest.approx((2 * 1 / 9 + 0 + 0) / 3)
    assert got["coverage"] == pytest.approx(2 / 3)
    assert got["interval_width"] == pytest.approx((2 + 0.5 + 2) / 3)
    lag_one = forecasting_metrics(truth, forecast, y_train=history)  # naive errors 2,1,2,1,2
    assert lag_one["mase"] == pytest.approx((1 / 3) / 1.6)
    assert "mase" not in forecasting_metrics(truth, forecast, y_train=[2.0, 2.0, 2.0])
    with pytest.raises(InvalidInput, match="both"):
        forecasting_metrics(truth, forecast, y_train=history, lower=[0, 0, 0])


def test_metrics_for_dispatches_by_task() -> None:
    assert metrics_for("regression", [1.0, 2.0], [1.0, 3.0]) == regression_metrics([1, 2], [1, 3])
    with pytest.raises(InvalidInput, match="unknown 'vision'"):
        metrics_for("vision", [1.0], [1.0])


# --- paired bootstrap and the gate ---------------------------------------------------------


def test_identical_predictions_give_a_zero_interval_and_pass() -> None:
    y, p1 = noisy_binary(500)
    for metric in ("roc_auc", "log_loss", "f1", "ece"):
        result = regression_gate(metric, y, p1, p1.copy(), n_boot=200)
        assert (result.difference, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
        assert result.passed and result.n == 500
    truth = np.linspace(0, 1, 50)
    assert regression_gate("rmse", truth, truth + 0.1, truth + 0.1, n_boot=100).passed


def test_vectorized_path_matches_per_replicate_loop_for_every_metric() -> None:
    rng = np.random.default_rng(3)
    y, p1 = noisy_binary(150, seed=3)
    other = np.clip(p1 + rng.normal(0, 0.1, 150), 0, 1)
    y3 = rng.integers(0, 3, 150)
    p3 = rng.dirichlet(np.ones(3), 150)
    q3 = rng.dirichlet(np.ones(3), 150)
    truth = rng.normal(size=150)
    for name, spec in RESAMPLED_METRICS.items():
        if spec.task == "regression":
            args = (truth, truth + rng.normal(0, 0.5, 150), truth + rng.normal(0, 0.6, 150))
        elif name in ("roc_auc", "pr_auc", "f1"):
            args = (y3, p3, q3)
        else:
            args = (y, np.column_stack([1 - p1, p1]), np.column_stack([1 - other, other]))
        fast = paired_bootstrap(spec, *args, n_boot=100, seed=5)
        slow = paired_bootstrap(lambda t, p, s=spec: s(t, p), *args, n_boot=100, seed=5)
        assert fast == pytest.approx(slow, abs=1e-12), name


@pytest.fixture(scope="module")
def ai4i_predictions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out labels, LightGBM probabilities and constant-prior probabilities on AI4I 2020."""
    frame = pd.read_csv(AI4I, encoding="utf-8-sig").drop(columns=NOT_FEATURES)
    train, test = train_test_split(frame, test_size=3000, stratify=frame[FAILURE], random_state=0)
    family = TabularFamily({"target": FAILURE, "n_estimators": 100, "checkpoint_every": 100})
    family.fit(train, LocalFitContext())
    outputs = family.predict_frame(test)
    lightgbm = np.array([[o.probabilities["0"], o.probabilities["1"]] for o in outputs])  # type: ignore[index]
    prior = np.tile([1 - train[FAILURE].mean(), train[FAILURE].mean()], (len(test), 1))
    return test[FAILURE].to_numpy(), lightgbm, prior


def test_gate_fails_a_clearly_worse_candidate_on_real_data(ai4i_predictions) -> None:
    y, lightgbm, prior = ai4i_predictions
    worse = regression_gate("roc_auc", y, lightgbm, prior)
    assert worse.champion == pytest.approx(classification_metrics(y, lightgbm, [0, 1])["roc_auc"])
    assert worse.champion > 0.9 and worse.candidate == pytest.approx(0.5)
    assert worse.ci_high < 0 and not worse.passed
    assert worse.ci_low <= worse.difference <= worse.ci_high
    assert "ci_low >= -max_drop" in worse.rule
    log_loss = regression_gate("log_loss", y, lightgbm, prior, higher_is_better=False)
    assert log_loss.ci_low > 0 and not log_loss.passed and "ci_high <= max_drop" in log_loss.rule
    better = regression_gate("roc_auc", y, prior, lightgbm)
    assert better.ci_low > 0 and better.passed


def test_max_drop_is_a_non_inferiority_margin(ai4i_predictions) -> None:
    y, lightgbm, _ = ai4i_predictions
    rng = np.random.default_rng(4)
    p1 = np.clip(
        lightgbm[:, 1] * np.exp(rng.normal(0, 0.3, len(y))), 0, 1
    )  # a slightly worse model
    strict = regression_gate("roc_auc", y, lightgbm, p1)
    assert -0.05 < strict.ci_low < 0 and not strict.passed
    edge = -strict.ci_low
    assert regression_gate("roc_auc", y, lightgbm, p1, max_drop=edge + 1e-9).passed
    assert not regression_gate("roc_auc", y, lightgbm, p1, max_drop=edge - 1e-9).passed


def test_paired_interval_is_narrower_than_an_unpaired_one() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 2000)
    right = rng.random(2000) < 0.8
    champion = np.where(right, y, 1 - y).astype(float)
    flip = rng.random(2000) < 0.03
    candidate = np.where(flip, 1 - champion, champion)  # same model on 97 % of rows
    accuracy = RESAMPLED_METRICS["accuracy"]
    _, low, high = paired_bootstrap(accuracy, y, champion, candidate, n_boot=500)
    unpaired = [
        accuracy(y[b], candidate[b]) - accuracy(y[a], champion[a])
        for a, b in rng.integers(0, 2000, size=(500, 2, 2000))
    ]
    unpaired_low, unpaired_high = np.quantile(unpaired, [0.025, 0.975])
    assert high - low < 0.5 * (unpaired_high - unpaired_low)


def test_gate_labels_and_rejections() -> None:
    y, p1 = noisy_binary(200)
    names = np.array(["fail", "ok"])[y]  # sorted: column 0 = "fail", column 1 = "ok"
    by_name = regression_gate("accuracy", names, p1, p1, n_boot=50)
    assert by_name.champion == classification_metrics(y, p1, [0, 1])["accuracy"]
    assert set(GATE_METRICS) >= {"accuracy", "f1", "roc_auc", "pr_auc", "log_loss", "ece"}
    with pytest.raises(InvalidInput, match="unknown 'auc'"):
        regression_gate("auc", y, p1, p1)
    with pytest.raises(InvalidInput, match="lower-is-better"):
        regression_gate("rmse", [1.0, 2.0], [1.0, 2.0], [1.0, 2.0], higher_is_better=True)
    with pytest.raises(InvalidInput, match="pass classes"):
        regression_gate("accuracy", ["a", "b", "c"], p1[:3], p1[:3])


# --- latency -------------------------------------------------------------------------------


def test_latency_profile_of_a_one_millisecond_call() -> None:
    seen: list[int] = []

    def predict(batch: list[dict]) -> None:
        seen.append(len(batch))
        time.sleep(0.001)

    profile = latency_profile(
        predict, [{"x": 1}, {"x": 2}, {"x": 3}], warmup=5, requests=60, batch=4
    )
    assert 1.0 <= profile["p50_ms"] < 3.0
    assert profile["p50_ms"] <= profile["p95_ms"] <= profile["p99_ms"] <= profile["max_ms"]
    assert profile["throughput_rows_per_s"] == pytest.approx(4000 / profile["mean_ms"], rel=0.1)
    assert seen == [4] * 65
    with pytest.raises(InvalidInput, match="rows"):
        latency_profile(predict, [])
