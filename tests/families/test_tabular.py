"""The tabular family on real data (ai4i2020 predictive maintenance) and on edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from learnloop.core.errors import (
    Conflict,
    InvalidInput,
    JobPaused,
    SchemaMismatch,
    StorageError,
)
from learnloop.core.family import FitResult
from learnloop.core.fitting import LocalFitContext
from learnloop.families.tabular import TabularFamily, read_table
from learnloop.families.tabular.preprocessing import (
    apply_preprocessor,
    build_preprocessor,
    feature_matrix,
    infer_task,
    plan_columns,
)

AI4I = Path("/work/shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv")
LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF"]
FAILURE = "Machine failure"
TORQUE = "Torque [Nm]"


@pytest.fixture(scope="module")
def ai4i_frame() -> pd.DataFrame:
    return read_table(AI4I)


@pytest.fixture(scope="module")
def split(ai4i_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified 3,000-row sample (kept in file order) and the rows left out of it."""
    sample, rest = train_test_split(
        ai4i_frame, train_size=3000, stratify=ai4i_frame[FAILURE], random_state=0
    )
    return sample.sort_index(), rest.sort_index()


@pytest.fixture(scope="module")
def classifier(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> tuple[TabularFamily, FitResult, LocalFitContext]:
    """LightGBM with default params predicting ``Machine failure`` on the sample."""
    family = TabularFamily({"target": FAILURE, "drop_columns": LEAKS})
    ctx = LocalFitContext()
    result = family.fit(split[0], ctx)
    return family, result, ctx


def feature_rows(frame: pd.DataFrame, target: str, n: int) -> list[dict[str, object]]:
    return frame.drop(columns=[target]).head(n).to_dict("records")


# -- real data ------------------------------------------------------------------------------


def test_read_table_strips_the_bom_and_reads_parquet_and_gzip(ai4i_frame, tmp_path: Path) -> None:
    assert list(ai4i_frame.columns[:2]) == ["UDI", "Product ID"]
    assert len(ai4i_frame) == 10_000
    head = ai4i_frame.head(50)
    head.to_parquet(tmp_path / "head.parquet")
    head.to_csv(tmp_path / "head.csv.gz", index=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "head.parquet"), head)
    assert read_table(tmp_path / "head.csv.gz")[TORQUE].tolist() == head[TORQUE].tolist()


def test_classifier_on_ai4i_has_a_high_auc_and_drops_ids(classifier, split) -> None:
    family, result, ctx = classifier
    assert result.metrics["roc_auc"] > 0.85
    assert family.evaluate(split[1])["roc_auc"] > 0.85
    dropped = result.info["dropped_columns"]
    assert dropped["UDI"].startswith("id-like") and dropped["Product ID"].startswith("id-like")
    assert all(dropped[name] == "listed in drop_columns" for name in LEAKS)
    assert result.info["features"]["Type"] == "categorical"
    assert result.info["task"] == "classification" and result.info["classes"] == [0, 1]
    assert result.info["rows_train"] + result.info["rows_valid"] == 3000
    assert [h["step"] for h in result.history] == [25.0 * k for k in range(1, 9)]
    assert [e.fraction for e in ctx.events] == [k / 8 for k in range(1, 9)]
    assert ctx.checkpoints_saved == 8


def test_regression_on_ai4i_predicts_torque(split) -> None:
    family = TabularFamily({"target": TORQUE, "drop_columns": [*LEAKS, FAILURE]})
    result = family.fit(split[0], LocalFitContext())
    assert result.info["task"] == "regression" and result.info["classes"] is None
    assert result.metrics["r2"] > 0.5
    assert family.evaluate(split[1])["r2"] > 0.5
    outputs = family.predict(family.validate_inputs(feature_rows(split[1], TORQUE, 5)))
    assert all(isinstance(o.prediction, float) and o.probabilities is None for o in outputs)


def test_multiclass_probabilities_cover_every_class(split) -> None:
    family = TabularFamily({"target": "Type", "n_estimators": 20, "checkpoint_every": 10})
    result = family.fit(split[0], LocalFitContext())
    assert result.info["classes"] == ["H", "L", "M"]
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(result.metrics)
    outputs = family.predict(family.validate_inputs(feature_rows(split[1], "Type", 10)))
    for output in outputs:
        assert set(output.probabilities) == {"H", "L", "M"}
        assert math.isclose(sum(output.probabilities.values()), 1.0)
        assert output.prediction == max(output.probabilities, key=output.probabilities.get)
    explained = family.explain(family.validate_inputs(feature_rows(split[1], "Type", 3)))
    assert len(explained) == 3 and "<bias>" in explained[0] and "Type" not in explained[0]


@pytest.mark.parametrize(
    ("estimator", "rounds", "chunk"), [("lightgbm", 60, 20), ("random_forest", 30, 10)]
)
def test_paused_and_resumed_fit_predicts_like_a_straight_fit(
    split, tmp_path: Path, estimator: str, rounds: int, chunk: int
) -> None:
    params = {"target": FAILURE, "drop_columns": LEAKS, "estimator": estimator,
              "n_estimators": rounds, "checkpoint_every": chunk}  # fmt: skip
    straight = TabularFamily(params)
    straight.fit(split[0], LocalFitContext())
    with pytest.raises(JobPaused):
        TabularFamily(params).fit(split[0], LocalFitContext(tmp_path, stop_after_checkpoints=2))
    resumed = TabularFamily(params)
    ctx = LocalFitContext(tmp_path)
    result = resumed.fit(split[0], ctx)
    assert ctx.events[0].message == f"resumed after {2 * chunk} rounds"
    assert [h["step"] for h in result.history] == [
        float(s) for s in range(chunk, rounds + 1, chunk)
    ]
    expected = straight.predict_frame(split[1])
    got = resumed.predict_frame(split[1])
    diff = max(
        abs(a.probabilities["1"] - b.probabilities["1"]) for a, b in zip(expected, got, strict=True)
    )
    assert diff <= 1e-9


def test_a_checkpoint_of_other_params_is_not_resumed(tmp_path: Path) -> None:
    frame, base = TabularFamily.example_data()
    params = {**base, "n_estimators": 10, "checkpoint_every": 5}
    with pytest.raises(JobPaused):
        TabularFamily(params).fit(frame, LocalFitContext(tmp_path, stop_after_checkpoints=1))
    ctx = LocalFitContext(tmp_path)
    TabularFamily({**params, "learning_rate": 0.1}).fit(frame, ctx)
    assert [e.fraction for e in ctx.events] == [0.5, 1.0]


# -- validation -----------------------------------------------------------------------------


def small_frame(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "colour": rng.choice(["red", "blue"], size=rows),
            "label": rng.choice(["yes", "no"], size=rows),
        }
    )


def issues_of(frame: pd.DataFrame, **params: object) -> dict[str, str]:
    parsed = TabularFamily.parse_params({"target": "label", **params})
    return {i.loc: i.message for i in TabularFamily.validate_frame(frame, parsed)}


def test_validate_frame_accepts_good_data() -> None:
    assert issues_of(small_frame()) == {}


def test_validate_frame_names_the_missing_target_and_lists_the_columns() -> None:
    found = issues_of(small_frame().drop(columns=["label"]))
    assert list(found) == ["label"] and "size, colour" in found["label"]


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        (lambda f: f.assign(label=f["label"].mask(f.index < 3)), "label", "3 missing"),
        (lambda f: f.assign(label="yes"), "label", "single distinct value"),
        (lambda f: f.assign(tags=[["a"]] * len(f)), "tags", "nested"),
        (lambda f: f.assign(notes=[None] * len(f)), "notes", "entirely empty"),
        (lambda f: f.assign(gap=pd.to_timedelta(f.index, "s")), "gap", "unsupported dtype"),
        (lambda f: f[["label"]], "<features>", "no usable feature"),
        (lambda f: f.head(0), "<rows>", "no rows"),
        (lambda f: f.head(5), "<rows>", "at least"),
    ],
)
def test_validate_frame_reports_each_problem_at_its_column(change, loc: str, words: str) -> None:
    found = issues_of(change(small_frame()))
    assert loc in found and words in found[loc]


def test_validate_frame_reports_absent_drop_columns_and_non_numeric_regression() -> None:
    found = issues_of(small_frame(), drop_columns=["nope"], task="regression")
    assert "not in the data" in found["nope"]
    assert "numeric target" in found["label"]


def test_params_are_checked() -> None:
    with pytest.raises(InvalidInput, match="drop_columns"):
        TabularFamily({"target": "y", "drop_columns": ["y"]})
    with pytest.raises(InvalidInput, match="validation_fraction"):
        TabularFamily({"target": "y", "validation_fraction": 0.95})
    with pytest.raises(InvalidInput, match="colour"):
        TabularFamily({"target": "y", "colour": "red"})


def test_columns_are_typed_and_ids_dates_and_constants_found() -> None:
    rows = 50
    frame = pd.DataFrame(
        {
            "row": np.arange(rows),
            "code": [f"c{i}" for i in range(rows)],
            "when": [f"2024-01-{1 + i % 28:02d}" for i in range(rows)],
            "flag": [i % 2 == 0 for i in range(rows)],
            "same": 7,
            "amount": np.linspace(0, 1, rows)[::-1] * (np.arange(rows) % 3),
            "y": np.arange(rows) % 2,
        }
    )
    plan = plan_columns(frame, "y", [])
    assert dict(plan.features) == {"when": "datetime", "flag": "categorical", "amount": "numeric"}
    assert set(plan.dropped) == {"row", "code", "same"}
    assert infer_task(frame["y"], "auto") == "classification"
    assert infer_task(frame["amount"], "auto") == "regression"
    assert infer_task(frame["code"], "auto") == "classification"


def test_step_by_step_transform_equals_the_column_transformer(split) -> None:
    frame = split[0].copy()
    frame.loc[frame.index[:30], "Air temperature [K]"] = np.nan
    frame.loc[frame.index[10:40], "Type"] = None
    plan = plan_columns(frame, FAILURE, LEAKS)
    for scale in (False, True):
        preprocessor = build_preprocessor(plan, scale=scale).fit(feature_matrix(frame, plan))
        unseen = split[1].head(200).assign(Type=["Z", None] * 100)
        matrix = feature_matrix(unseen, plan)
        expected = preprocessor.transform(matrix)
        np.testing.assert_array_equal(apply_preprocessor(preprocessor, matrix), expected)


# -- serving --------------------------------------------------------------------------------


def test_validate_inputs_names_each_bad_field(classifier, split) -> None:
    family = classifier[0]
    good = feature_rows(split[1], FAILURE, 1)[0]
    missing = {k: v for k, v in good.items() if k != TORQUE}
    with pytest.raises(InvalidInput) as caught:
        family.validate_inputs(
            [
                good,
                missing,
                {**good, "Air temperature [K]": "hot"},
                {**good, "Tool wear [min]": True},
                {**good, "Type": ["L"]},
                "not a mapping",
            ]
        )
    found = {i.loc: i.message for i in caught.value.issues}
    assert found == {
        f"inputs[1].{TORQUE}": "missing feature",
        "inputs[2].Air temperature [K]": "expected a number, got 'hot'",
        "inputs[3].Tool wear [min]": "expected a number, got True",
        "inputs[4].Type": "expected a single value, got list",
        "inputs[5]": "expected an object of feature values",
    }


def test_missing_values_are_imputed_and_columns_of_the_training_data_ignored(
    classifier, split
) -> None:
    family = classifier[0]
    good = feature_rows(split[1], FAILURE, 1)[0]
    # UDI (id-like), TWF (in drop_columns) and the target are columns the model was trained
    # beside: a whole row of the snapshot may be sent
    odd = {**good, "Air temperature [K]": None, "Type": None, "UDI": 5, "TWF": 0, FAILURE: 1}
    texty = {**good, "Torque [Nm]": str(good[TORQUE])}
    items = family.validate_inputs([good, odd, texty])
    assert "UDI" not in items[1].model_extra and FAILURE not in items[1].model_extra
    outputs = family.predict(items)
    assert len(outputs) == 3 and outputs[2] == outputs[0]
    assert math.isclose(sum(outputs[1].probabilities.values()), 1.0)


def test_keys_that_are_no_feature_are_ignored_and_reported(classifier, split) -> None:
    family = classifier[0]
    good = feature_rows(split[1], FAILURE, 1)[0]
    outputs = family.predict(family.validate_inputs([good, {**good, "colour": "red"}]))
    assert outputs[1].warnings == ["colour: not a feature of this model; ignored"]
    assert outputs[1].probabilities == outputs[0].probabilities


def test_a_missing_feature_names_the_key_that_looks_like_it(classifier, split) -> None:
    family = classifier[0]
    good = feature_rows(split[1], FAILURE, 1)[0]
    typo = {k: v for k, v in good.items() if k != TORQUE} | {"Torque [nm]": good[TORQUE]}
    with pytest.raises(InvalidInput) as caught:
        family.validate_inputs([typo])
    assert {i.loc: i.message for i in caught.value.issues} == {
        f"inputs[0].{TORQUE}": "missing feature (sent 'Torque [nm]': a misspelling?)"
    }


def test_an_unknown_category_is_predicted_and_reported(classifier, split) -> None:
    family = classifier[0]
    good = feature_rows(split[1], FAILURE, 1)[0]
    outputs = family.predict(family.validate_inputs([good, {**good, "Type": "XL"}]))
    assert outputs[0].warnings is None
    assert "warnings" not in outputs[0].model_dump(mode="json")  # the usual output is unchanged
    assert outputs[1].warnings == [
        "Type: unknown category 'XL' (not seen in training; predicted as none of the known "
        "categories)"
    ]
    assert outputs[1].model_dump(mode="json")["warnings"] == outputs[1].warnings
    assert math.isclose(sum(outputs[1].probabilities.values()), 1.0)


def test_overlong_string_values_are_refused(classifier, split) -> None:
    family = classifier[0]
    good = feature_rows(split[1], FAILURE, 1)[0]
    with pytest.raises(InvalidInput) as caught:
        family.validate_inputs([{**good, "Type": "L" * 10_001}, {**good, TORQUE: "1" * 20_000}])
    assert [i.loc for i in caught.value.issues] == ["inputs[0].Type", f"inputs[1].{TORQUE}"]
    assert "at most 10000" in caught.value.issues[0].message


def test_predict_frame_matches_predict(classifier, split) -> None:
    family = classifier[0]
    rows = split[1].head(20)
    items = family.validate_inputs(feature_rows(rows, FAILURE, 20))
    assert family.predict_frame(rows) == family.predict(items)
    assert family.predict([]) == []


def test_evaluate_needs_the_target(classifier, split) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        classifier[0].evaluate(split[1].drop(columns=[FAILURE]))
    assert [i.loc for i in caught.value.issues] == [FAILURE]


def test_an_unfitted_family_refuses_to_predict() -> None:
    with pytest.raises(Conflict, match="not fitted"):
        TabularFamily({"target": "y"}).predict([])


def test_save_and_load_predict_the_same(classifier, split, tmp_path: Path) -> None:
    family = classifier[0]
    family.save(tmp_path)
    loaded = TabularFamily.load(tmp_path)
    assert loaded.predict_frame(split[1]) == family.predict_frame(split[1])
    meta = json.loads((tmp_path / "tabular.json").read_text())
    assert meta["params"]["target"] == FAILURE
    assert meta["describe"] == loaded.describe() == family.describe()
    air = meta["describe"]["feature_ranges"]["Air temperature [K]"]
    assert split[0]["Air temperature [K]"].min() <= air["min"] < air["max"]
    assert air["max"] <= split[0]["Air temperature [K]"].max()


def test_loading_a_folder_without_a_model_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "tabular.json").write_text('{"params": {"target": "y"}}')
    with pytest.raises(StorageError):
        TabularFamily.load(tmp_path)


def test_a_class_seen_once_is_learnt_not_held_out() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=30), "y": ["a"] * 20 + ["b"] * 9 + ["z"]})
    family = TabularFamily({"target": "y", "n_estimators": 5})
    result = family.fit(frame, LocalFitContext())
    assert result.info["classes"] == ["a", "b", "z"]
    outputs = family.predict_frame(frame.head(2))
    assert all(set(o.probabilities) == {"a", "b", "z"} for o in outputs)


def test_lightgbm_explanations_sum_to_the_log_odds(classifier, split) -> None:
    family = classifier[0]
    items = family.validate_inputs(feature_rows(split[1], FAILURE, 8))
    explained = family.explain(items)
    outputs = family.predict(items)
    assert len(explained) == 8 and family.explain([]) == []
    features = list(family.describe()["features"])
    for attribution, output in zip(explained, outputs, strict=True):
        assert list(attribution) == [*features, "<bias>"]
        p = output.probabilities["1"]
        assert math.isclose(sum(attribution.values()), math.log(p / (1 - p)), abs_tol=1e-6)


def test_linear_explanations_sum_to_the_prediction() -> None:
    frame, _ = TabularFamily.example_data()
    family = TabularFamily({"target": "load", "drop_columns": ["failure"], "estimator": "linear"})
    family.fit(frame, LocalFitContext())
    items = family.validate_inputs(feature_rows(frame.drop(columns=["failure"]), "load", 5))
    for attribution, output in zip(family.explain(items), family.predict(items), strict=True):
        assert math.isclose(sum(attribution.values()), output.prediction, abs_tol=1e-9)


def test_forests_do_not_explain() -> None:
    frame, params = TabularFamily.example_data()
    family = TabularFamily({**params, "estimator": "random_forest", "n_estimators": 5})
    family.fit(frame, LocalFitContext())
    with pytest.raises(NotImplementedError):
        family.explain(
            family.validate_inputs(feature_rows(frame.drop(columns=["load"]), "failure", 1))
        )
