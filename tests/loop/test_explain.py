"""SHAP, LIME and global importance for tabular families fitted on the AI4I 2020 data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shap

from learnloop.core.errors import Conflict, InvalidInput, SchemaMismatch
from learnloop.core.fitting import LocalFitContext
from learnloop.families.tabular import TabularFamily
from learnloop.loop.explain import explain_lime, explain_shap, global_importance

AI4I = (
    Path(__file__).resolve().parents[2].parent
    / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
)
FAILURE = "Machine failure"
LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF"]
FEATURES = [
    "Type",
    "Air temperature [K]",
    "Process temperature [K]",
    "Rotational speed [rpm]",
    "Torque [Nm]",
    "Tool wear [min]",
]
MECHANICAL = {"Torque [Nm]", "Rotational speed [rpm]", "Tool wear [min]"}


@pytest.fixture(scope="module")
def ai4i() -> pd.DataFrame:
    return pd.read_csv(AI4I, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def train(ai4i: pd.DataFrame) -> pd.DataFrame:
    return ai4i.sample(n=3000, random_state=0).sort_index()


@pytest.fixture(scope="module")
def unseen(ai4i: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """Rows not trained on: the first 20 working rows and 20 failures."""
    rest = ai4i.drop(index=train.index)
    return pd.concat([rest[rest[FAILURE] == 0].head(20), rest[rest[FAILURE] == 1].head(20)])


def fitted(train: pd.DataFrame, **params: object) -> TabularFamily:
    family = TabularFamily({"target": FAILURE, "drop_columns": LEAKS, **params})
    family.fit(train, LocalFitContext())
    return family


@pytest.fixture(scope="module")
def boosted(train: pd.DataFrame) -> TabularFamily:
    return fitted(train, n_estimators=30, checkpoint_every=30)


@pytest.fixture(scope="module")
def linear(train: pd.DataFrame) -> TabularFamily:
    return fitted(train, estimator="linear")


def log_odds(family: TabularFamily, frame: pd.DataFrame) -> np.ndarray:
    p = np.array([o.probabilities["1"] for o in family.predict_frame(frame)])
    return np.log(p / (1 - p))


def top(weights: dict[str, float], n: int) -> list[str]:
    return sorted(weights, key=lambda name: -abs(weights[name]))[:n]


# -- SHAP -----------------------------------------------------------------------------------


def test_tree_shap_adds_up_to_the_log_odds_per_original_feature(boosted, unseen) -> None:
    result = explain_shap(boosted, unseen.head(8))
    assert result["method"] == "shap" and result["explainer"] == "tree"
    assert result["feature_perturbation"] == "tree_path_dependent"
    assert result["space"] == "log_odds" and result["features"] == FEATURES
    json.dumps(result)  # JSON-able as it is
    for row, margin in zip(result["rows"], log_odds(boosted, unseen.head(8)), strict=True):
        assert list(row["attributions"]) == FEATURES and row["class"] == 1
        total = result["base_value"] + sum(row["attributions"].values())
        assert math.isclose(total, margin, abs_tol=1e-4)
        assert row["sum_check"]["abs_error"] < 1e-4


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_one_hot_columns_of_type_are_summed_into_type(boosted, unseen) -> None:
    model = boosted._fitted()
    x = model.transform(unseen.head(5))
    per_column = np.asarray(shap.TreeExplainer(model.estimator).shap_values(x))
    type_columns = [j for j, owner in enumerate(model.owners) if owner == "Type"]
    assert len(type_columns) == 3  # H, L, M
    result = explain_shap(boosted, unseen.head(5))
    for row, values in zip(result["rows"], per_column, strict=True):
        assert math.isclose(row["attributions"]["Type"], values[type_columns].sum(), abs_tol=1e-9)


def test_tree_shap_agrees_with_the_familys_own_explanations(boosted, unseen) -> None:
    rows = unseen.iloc[[0, 1, 20, 21, 22]]
    own = boosted.explain(boosted.validate_inputs(rows.to_dict("records")))
    result = explain_shap(boosted, rows.to_dict("records"))
    for row, contributions in zip(result["rows"], own, strict=True):
        ours = row["attributions"]
        theirs = {k: v for k, v in contributions.items() if k != "<bias>"}
        assert top(ours, 1) == top(theirs, 1)
        assert all(np.sign(ours[f]) == np.sign(theirs[f]) for f in top(theirs, 3))


def test_interventional_tree_shap_starts_from_the_background_mean(boosted, unseen, train) -> None:
    background = train.head(50)
    result = explain_shap(boosted, unseen.tail(5), background=background, max_background=50)
    assert result["feature_perturbation"] == "interventional"
    assert math.isclose(result["base_value"], log_odds(boosted, background).mean(), abs_tol=1e-6)
    assert all(row["sum_check"]["abs_error"] < 1e-4 for row in result["rows"])


def test_linear_shap_equals_the_familys_linear_explanations(linear, unseen) -> None:
    rows = unseen.iloc[18:24]
    result = explain_shap(linear, rows)
    assert (result["explainer"], result["space"]) == ("linear", "log_odds")
    own = linear.explain(linear.validate_inputs(rows.to_dict("records")))
    for row, contributions, margin in zip(result["rows"], own, log_odds(linear, rows), strict=True):
        for feature in FEATURES:
            assert math.isclose(row["attributions"][feature], contributions[feature], abs_tol=1e-9)
        assert math.isclose(row["sum_check"]["base_plus_sum"], margin, abs_tol=1e-9)


def test_kernel_shap_explains_the_probability_with_a_background(boosted, unseen, train) -> None:
    rows = unseen.iloc[[0, 25]]
    kwargs = {"background": train.head(20), "nsamples": 100, "explainer": "kernel"}
    result = explain_shap(boosted, rows, **kwargs)
    assert (result["explainer"], result["space"]) == ("kernel", "probability")
    for row in result["rows"]:
        assert math.isclose(row["output"], row["probabilities"]["1"], abs_tol=1e-12)
        assert row["sum_check"]["abs_error"] < 1e-6
    assert explain_shap(boosted, rows, **kwargs) == result  # seeded
    with pytest.raises(InvalidInput) as caught:
        explain_shap(boosted, rows, explainer="kernel")
    assert caught.value.issues[0].loc == "background"


@pytest.mark.parametrize("estimator", ["random_forest", "hist_gradient_boosting"])
def test_other_tree_ensembles_are_explained_exactly(estimator, train, unseen) -> None:
    family = fitted(train.head(1500), estimator=estimator, n_estimators=10, checkpoint_every=10)
    result = explain_shap(family, unseen.iloc[18:22])
    expected_space = "probability" if estimator == "random_forest" else "log_odds"
    assert (result["explainer"], result["space"]) == ("tree", expected_space)
    assert all(row["sum_check"]["abs_error"] < 1e-6 for row in result["rows"])


def test_multiclass_explains_each_rows_predicted_class(train, unseen) -> None:
    family = TabularFamily(
        {"target": "Type", "drop_columns": [*LEAKS, FAILURE], "n_estimators": 10}
    )
    family.fit(train, LocalFitContext())
    result = explain_shap(family, unseen.head(6))
    assert result["space"] == "raw_score" and "Type" not in result["features"]
    for row in result["rows"]:
        assert row["class"] == row["prediction"]
        assert row["sum_check"]["abs_error"] < 1e-4


# -- LIME -----------------------------------------------------------------------------------


def test_lime_agrees_with_shap_on_a_clear_failure(boosted, unseen, train) -> None:
    failures = unseen[unseen[FAILURE] == 1]
    clear = failures.iloc[[int(np.argmax(log_odds(boosted, failures)))]]
    lime = explain_lime(boosted, clear, training_frame=train, num_features=6, num_samples=1000)
    row = lime["rows"][0]
    assert lime["method"] == "lime" and row["prediction"] == 1 and row["output"] > 0.5
    assert set(row["feature_weights"]) == set(FEATURES)
    assert any(condition.startswith("Type=") for condition in row["weights"])
    assert -1.0 <= row["score"] <= 1.0 and isinstance(row["intercept"], float)
    shap_top = set(top(explain_shap(boosted, clear)["rows"][0]["attributions"], 3))
    assert shap_top & set(top(row["feature_weights"], 3))
    json.dumps(lime)


def test_lime_is_deterministic_for_a_seed(linear, unseen, train) -> None:
    rows = unseen.iloc[[3, 30]].to_dict("records")
    first = explain_lime(linear, rows, training_frame=train, num_samples=500, seed=7)
    assert explain_lime(linear, rows, training_frame=train, num_samples=500, seed=7) == first
    other = explain_lime(linear, rows, training_frame=train, num_samples=500, seed=8)
    assert other["rows"][0]["weights"] != first["rows"][0]["weights"]


# -- global importance ----------------------------------------------------------------------


def test_global_importance_ranks_the_mechanical_features_first(boosted, ai4i) -> None:
    result = global_importance(boosted, ai4i, max_rows=500, seed=1)
    ranked = [entry["feature"] for entry in result["importance"]]
    assert set(ranked[:3]) == MECHANICAL and sorted(ranked) == sorted(FEATURES)
    scores = [entry["mean_abs_shap"] for entry in result["importance"]]
    assert scores == sorted(scores, reverse=True) and result["rows"] == 500
    own = result["estimator_importance"]
    assert own["type"] == "split_gain" and math.isclose(sum(own["values"].values()), 1.0)
    assert next(iter(own["values"])) in MECHANICAL
    assert global_importance(boosted, ai4i, max_rows=500, seed=1) == result
    assert global_importance(boosted, ai4i, max_rows=500, seed=2) != result


# -- bad inputs -----------------------------------------------------------------------------


def test_a_missing_feature_is_named(boosted, unseen, train) -> None:
    records = unseen.head(2).to_dict("records")
    del records[1]["Torque [Nm]"]
    with pytest.raises(InvalidInput) as caught:
        explain_shap(boosted, records)
    assert [i.loc for i in caught.value.issues] == ["inputs[1].Torque [Nm]"]
    with pytest.raises(SchemaMismatch) as caught:
        explain_shap(boosted, unseen.drop(columns=["Tool wear [min]"]))
    assert [i.loc for i in caught.value.issues] == ["Tool wear [min]"]
    with pytest.raises(SchemaMismatch) as caught:
        explain_lime(boosted, unseen.head(1), training_frame=train.drop(columns=["Type"]))
    assert [i.loc for i in caught.value.issues] == ["Type"]
    with pytest.raises(SchemaMismatch) as caught:
        global_importance(boosted, unseen.assign(**{"Torque [Nm]": "strong"}))
    assert caught.value.issues[0].loc == "Torque [Nm]"
    with pytest.raises(InvalidInput):
        explain_shap(boosted, [])


def test_an_unfitted_family_is_refused() -> None:
    family = TabularFamily({"target": FAILURE})
    with pytest.raises(Conflict):
        explain_shap(family, [{"Type": "L"}])
