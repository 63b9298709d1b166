"""Incremental training: warm start from a previous version, replay, the forgetting report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from learnloop.api.app import create_app
from learnloop.container import Container
from learnloop.core.auth import Role
from learnloop.core.errors import InvalidInput
from learnloop.core.family import REPLAY_COLUMN
from learnloop.core.fitting import LocalFitContext
from learnloop.families.tabular import TabularFamily
from learnloop.loop.incremental import WarmStart, forgetting_report, holdout_mask
from learnloop.loop.training import TrainRequest
from tests.conftest import LEAKS

PARAMS = {"target": "Machine failure", "drop_columns": LEAKS, "n_estimators": 20}


class ColdTabular(TabularFamily):
    """The tabular family without the warm-start capability."""

    name = "tabular_cold"
    supports_warm_start = False


def request(c: Container, frame: pd.DataFrame, family: str = "tabular", **fields: Any) -> Any:
    params = {**PARAMS, **fields.pop("params", {})}
    dataset = c.datasets.import_frame(
        frame, family=family, params=params, name="ai4i", source="test", actor="test"
    )
    raw = TrainRequest(family=family, model="failure", dataset_id=dataset.id, params=params)
    return c.training.validate(raw.model_copy(update=fields))


def train(c: Container, frame: pd.DataFrame, **fields: Any) -> dict[str, Any]:
    """Run one ``train`` job to the end; its result."""
    job = c.jobs.submit("train", request(c, frame, **fields).model_dump(), actor="test")
    c.start_workers(1)
    done = c.jobs.wait(job.id, 120)
    assert done.status.value == "succeeded", done.error
    return dict(done.result or {})


def load(c: Container, version: str) -> TabularFamily:
    return TabularFamily.load(c.registry.registry.artifact_path("failure", version))


@pytest.fixture
def halves(ai4i_sample: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    half = len(ai4i_sample) // 2
    return ai4i_sample.iloc[:half], ai4i_sample.iloc[half:].reset_index(drop=True)


def test_warm_start_continues_the_champion_with_replay_and_reports_forgetting(
    container: Container, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    first, second = halves
    assert train(container, first, alias="champion")["version"] == "1"
    result = train(container, second, warm_start_from="alias:champion", replay_fraction=0.3)

    pool = len(first) - round(0.2 * len(first))  # rows outside the old evaluation set
    assert result["warm_start"] == {
        "warm_start_from": "1",
        "replay_fraction": 0.3,
        "replay_rows": round(0.3 * pool),
    }
    assert result["info"]["replay_rows"] == round(0.3 * pool)
    assert result["info"]["rows_train"] + result["info"]["rows_valid"] == len(second) + round(
        0.3 * pool
    )
    v1, v2 = load(container, "1"), load(container, result["version"])
    trees = [m._fitted().estimator.booster_.num_trees() for m in (v1, v2)]
    assert trees == [20, 40]
    assert v2.describe()["rounds"] == 40

    cold = TabularFamily(PARAMS)
    cold.fit(second, LocalFitContext())
    rows = second.drop(columns=["Machine failure"]).head(50)
    warm_p = [o.probabilities["1"] for o in v2.predict_frame(rows)]
    cold_p = [o.probabilities["1"] for o in cold.predict_frame(rows)]
    assert not np.allclose(warm_p, cold_p, atol=1e-3)

    report = result["forgetting"]
    assert report["metric"] == "roc_auc"
    assert report["rows"] == round(0.2 * len(first))
    assert 0.0 <= report["before"] <= 1.0 and 0.0 <= report["after"] <= 1.0
    assert report["forgetting"] == pytest.approx(report["before"] - report["after"])
    assert report["new_data"] == result["metrics"]["roc_auc"]
    run = container.model_registry.client.get_run(result["run_id"]).data
    assert run.metrics["forgetting_before"] == pytest.approx(report["before"])
    assert run.metrics["forgetting_after"] == pytest.approx(report["after"])
    assert run.params["warm_start_from"] == "1"
    assert run.tags["learnloop.warm_start_from"] == "1"


def test_the_api_starts_a_warm_training_run_and_names_a_bad_field(
    container: Container, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    first, second = halves
    train(container, first, alias="champion")
    dataset = request(container, second).dataset_id
    _, token = container.keys.create(Role.ADMIN, "admin-key", actor="test")
    auth = {"Authorization": f"Bearer {token}"}
    body = {"family": "tabular", "model": "failure", "dataset_id": dataset, "params": PARAMS}
    with TestClient(create_app(container, workers=True)) as client:
        bad = client.post(
            "/v1/training/start", json={**body, "warm_start_from": "alias:nope"}, headers=auth
        )
        assert bad.status_code == 422
        assert [i["loc"] for i in bad.json()["error"]["issues"]] == ["warm_start_from"]
        started = client.post(
            "/v1/training/start",
            json={**body, "warm_start_from": "alias:champion", "replay_fraction": 0.3},
            headers=auth,
        )
        assert started.status_code == 202, started.text
        done = container.jobs.wait(started.json()["id"], 120)
    assert done.status.value == "succeeded", done.error
    assert done.payload["warm_start_from"] == "1"  # the alias is pinned when queued
    assert (done.result or {})["forgetting"]["metric"] == "roc_auc"


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("7", "version"),
        ("alias:nope", "not set"),
        ("latest", "neither a version number"),
        ("alias:9bad", "not a valid alias"),
    ],
)
def test_a_bad_warm_start_from_is_named(
    container: Container, halves: tuple[pd.DataFrame, pd.DataFrame], ref: str, says: str
) -> None:
    first, second = halves
    train(container, first)
    with pytest.raises(InvalidInput) as e:
        request(container, second, warm_start_from=ref)
    assert [i.loc for i in e.value.issues] == ["warm_start_from"]
    assert says in e.value.issues[0].message


def test_replay_alone_and_a_missing_model_are_refused(
    container: Container, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    with pytest.raises(InvalidInput) as e:
        request(container, halves[0], warm_start_from="1")
    assert e.value.issues[0].loc == "warm_start_from"
    with pytest.raises(InvalidInput) as e:
        request(container, halves[0], replay_fraction=0.5)
    assert e.value.issues[0].loc == "replay_fraction"


def test_another_family_and_a_family_without_warm_start_are_refused(
    container: Container, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    container.families.register(ColdTabular)
    first, second = halves
    train(container, first)
    with pytest.raises(InvalidInput) as e:
        request(container, second, family="tabular_cold", warm_start_from="1")
    assert "is a 'tabular' model" in e.value.issues[0].message
    assert e.value.issues[0].loc == "warm_start_from"
    train(container, first, family="tabular_cold", model="cold")
    with pytest.raises(InvalidInput) as e:
        request(container, second, family="tabular_cold", model="cold", warm_start_from="1")
    assert [i.loc for i in e.value.issues] == ["warm_start_from"]
    assert "does not support warm start" in e.value.issues[0].message


def test_unsupported_estimator_and_estimator_switch_are_refused(
    container: Container, halves: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    first, second = halves
    hist = {"estimator": "hist_gradient_boosting", "n_estimators": 5}
    train(container, first, params=hist)
    with pytest.raises(InvalidInput) as e:
        request(container, second, params=hist, warm_start_from="1")
    issue = e.value.issues[0]
    assert issue.loc == "warm_start_from" and "hist_gradient_boosting" in issue.message
    with pytest.raises(InvalidInput) as e:
        request(container, second, params={"estimator": "lightgbm"}, warm_start_from="1")
    assert [i.loc for i in e.value.issues] == ["params.estimator"]


def test_the_default_contract_refuses_warm_start(halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    previous = ColdTabular(PARAMS)
    with pytest.raises(InvalidInput) as e:
        super(TabularFamily, ColdTabular(PARAMS)).fit_incremental(
            halves[1], LocalFitContext(), previous
        )
    assert e.value.issues[0].loc == "warm_start_from"


@pytest.mark.parametrize("estimator", ["random_forest", "linear"])
def test_forest_adds_trees_and_linear_continues(
    halves: tuple[pd.DataFrame, pd.DataFrame], estimator: str
) -> None:
    first, second = halves
    params = {**PARAMS, "estimator": estimator, "n_estimators": 10}
    v1 = TabularFamily(params)
    v1.fit(first, LocalFitContext())
    replay = first.sample(100, random_state=0).assign(**{REPLAY_COLUMN: True})
    data = pd.concat([second.assign(**{REPLAY_COLUMN: False}), replay], ignore_index=True)
    v2 = TabularFamily(params)
    fit = v2.fit_incremental(data, LocalFitContext(), v1)
    assert fit.info["replay_rows"] == 100
    assert fit.info["rows_valid"] == round(0.2 * len(second))  # replayed rows only train
    before, after = v1._fitted().estimator, v2._fitted().estimator
    if estimator == "random_forest":
        assert (len(before.estimators_), len(after.estimators_)) == (10, 20)
        assert len(v1._fitted().estimator.estimators_) == 10  # the previous one is untouched
    else:
        assert not np.allclose(before.coef_, after.coef_)
    assert 0.0 <= fit.metrics["roc_auc"] <= 1.0


def test_unseen_categories_and_labels(halves: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    first, second = halves
    v1 = TabularFamily(PARAMS)
    v1.fit(first, LocalFitContext())
    novel = second.assign(Type=second["Type"].where(second.index % 7 != 0, "X"))
    v2 = TabularFamily(PARAMS)
    v2.fit_incremental(novel, LocalFitContext(), v1)
    assert len(v2.predict_frame(novel.head(20))) == 20
    relabelled = second.assign(**{"Machine failure": second["Machine failure"].replace(1, 2)})
    with pytest.raises(InvalidInput, match="cannot continue") as e:
        TabularFamily(PARAMS).fit_incremental(relabelled, LocalFitContext(), v1)
    assert e.value.issues[0].loc == "Machine failure"


def test_holdout_uses_split_marks_else_a_fixed_sample() -> None:
    frame = pd.DataFrame({"x": range(10), "split": ["train"] * 7 + ["valid"] * 3})
    assert holdout_mask(frame, {}).tolist() == [False] * 7 + [True] * 3
    plain = frame.drop(columns=["split"])
    assert holdout_mask(plain, {}).sum() == 2
    assert holdout_mask(plain, {}).tolist() == holdout_mask(plain, {}).tolist()


def test_forgetting_of_a_regression_is_positive_when_rmse_grows(
    halves: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    first, second = halves
    params = {"target": "Torque [Nm]", "drop_columns": ["Machine failure", *LEAKS]}
    params |= {"estimator": "linear"}
    v1, v2 = TabularFamily(params), TabularFamily(params)
    v1.fit(first, LocalFitContext())
    shifted = second.assign(**{"Torque [Nm]": second["Torque [Nm]"] + 25.0})
    fit = v2.fit_incremental(shifted, LocalFitContext(), v1)
    warm = WarmStart(None, v1, pd.DataFrame(), first.tail(200))  # type: ignore[arg-type]
    report = forgetting_report(warm, v2, fit.metrics)
    assert report is not None and report["metric"] == "rmse"
    assert report["after"] > report["before"] + 10
    assert report["forgetting"] == pytest.approx(report["after"] - report["before"])
