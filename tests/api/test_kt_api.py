"""The knowledge-tracing routes over HTTP on a small model trained on simulated learners:
bad histories are 422s naming the field, answers are idempotent, insights, recommendations,
explanations, behaviour analysis, bias over learner groups, GDPR erasure of a learner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from learnloop.api.app import create_app
from learnloop.container import Container
from learnloop.core.auth import Role
from learnloop.families.knowledge_tracing import generate_synthetic_data
from learnloop.loop.training import TrainRequest
from tests.conftest import fast_settings

MODEL = "kt-api"


class KT:
    def __init__(self, c: Container, client: TestClient, dataset_id: str) -> None:
        self.c, self.client, self.dataset_id = c, client, dataset_id

    def predict(self, *inputs: dict[str, Any]) -> Any:
        return self.client.post(f"/v1/models/{MODEL}/predict", json={"inputs": list(inputs)})


@pytest.fixture(scope="module")
def kt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KT]:
    home = tmp_path_factory.mktemp("kt-api")
    c = Container(fast_settings(home)).open()
    frame = generate_synthetic_data(300, num_items=20, num_skills=3, attempts=20, seed=2)
    frame = frame.interactions.drop(columns=["p_true"])
    params = {"model": "dkt", "epochs": 3, "hidden": 16, "embed_dim": 16, "threads": 1,
              "topics": {"c0": "algebra", "c1": "algebra", "c2": "geometry"}}  # fmt: skip
    dataset = c.datasets.import_frame(
        frame, family="knowledge_tracing", params=params, name="sim", source="test",
        actor="test", subject_column="learner_id",
    )  # fmt: skip
    request = c.training.validate(
        TrainRequest(
            family="knowledge_tracing",
            model=MODEL,
            dataset_id=dataset.id,
            params=params,
            alias="champion",
        )  # fmt: skip
    )
    job = c.jobs.submit("train", request.model_dump(), actor="test")
    c.start_workers(1)
    assert c.jobs.wait(job.id, 240).status.value == "succeeded"
    _, token = c.keys.create(Role.ADMIN, "kt", actor="test")
    try:
        with TestClient(create_app(c), headers={"Authorization": f"Bearer {token}"}) as client:
            yield KT(c, client, dataset.id)
    finally:
        c.close()


@pytest.mark.parametrize(
    ("item", "where"),
    [
        ({"item_id": "q1", "history": {"item_ids": ["q1", "q2"], "correct": [1]}}, "history"),
        ({"item_id": "q1", "history": [{"item_id": "q2", "correct": 3}]}, "history.0.correct"),
        ({"learner_id": "x"}, "inputs[0]"),
    ],
)
def test_malformed_histories_are_422_naming_the_field(
    kt: KT, item: dict[str, Any], where: str
) -> None:
    r = kt.predict(item)
    assert r.status_code == 422, r.text
    locs = [i["loc"] for i in r.json()["error"]["issues"]]
    assert any(where in loc for loc in locs), locs


def test_predictions_flag_cold_start_and_are_not_cached(kt: KT) -> None:
    r = kt.predict({"item_id": "q404", "skill_ids": ["c0"], "history": []})
    assert r.status_code == 200 and r.json()["outputs"][0]["cold_start"] == ["item:q404"]
    first = kt.predict({"learner_id": "cache", "item_id": "q1"}).json()["outputs"][0]
    kt.client.post(
        f"/v1/kt/{MODEL}/learners/cache/answers",
        json={"answers": [{"item_id": "q1", "correct": 1}]},
    )
    second = kt.predict({"learner_id": "cache", "item_id": "q1"}).json()
    assert second["cache_hits"] == 0 and second["outputs"][0]["history_length"] == 1
    assert second["outputs"][0]["probability"] != first["probability"]


def test_answers_are_idempotent_and_validated(kt: KT) -> None:
    body = {"answers": [{"item_id": "q2", "correct": 1, "idempotency_key": "a-1"}]}
    first = kt.client.post(f"/v1/kt/{MODEL}/learners/idem/answers", json=body).json()
    again = kt.client.post(f"/v1/kt/{MODEL}/learners/idem/answers", json=body).json()
    assert (first["stored"], again["stored"], again["duplicates"]) == (1, 0, 1)
    out = kt.predict({"learner_id": "idem", "item_id": "q2"}).json()["outputs"][0]
    assert out["history_length"] == 1
    bad = kt.client.post(
        f"/v1/kt/{MODEL}/learners/idem/answers", json={"answers": [{"item_id": "q2", "correct": 5}]}
    )
    assert bad.status_code == 422
    assert any("answers.0.correct" in i["loc"] for i in bad.json()["error"]["issues"])


def test_insights_recommend_and_explain(kt: KT) -> None:
    answers = [{"item_id": f"q{i}", "correct": 1} for i in range(8)]
    kt.client.post(f"/v1/kt/{MODEL}/learners/lea/answers", json={"answers": answers})
    body = kt.client.get(f"/v1/kt/{MODEL}/learners/lea/insights", params={"k": 3}).json()
    assert set(body["mastery"]) == {"c0", "c1", "c2"}
    assert set(body["topics"]) == {"algebra", "geometry"}
    assert body["topics"]["geometry"] == pytest.approx(body["mastery"]["c2"])
    assert body["attempts"] == 8 and body["trend"]["attempts"] == 8
    recs = body["recommendations"]
    assert 1 <= len(recs) <= 3
    assert [r["expected_gain"] for r in recs] == sorted(
        (r["expected_gain"] for r in recs), reverse=True
    )
    assert not {r["item_id"] for r in recs} & {f"q{i}" for i in range(3, 8)}  # just answered
    r = kt.client.post(
        f"/v1/kt/{MODEL}/recommend",
        json={"history": answers, "k": 2, "band": {"low": 0.0, "high": 1.0}},
    )
    assert r.status_code == 200 and len(r.json()["recommendations"]) == 2
    bad = kt.client.post(
        f"/v1/kt/{MODEL}/recommend", json={"learner_id": "lea", "band": {"low": 0.9, "high": 0.1}}
    )
    assert bad.status_code == 422
    explained = kt.client.post(
        f"/v1/models/{MODEL}/explain", json={"inputs": [{"learner_id": "lea", "item_id": "q9"}]}
    ).json()
    attempt_scores = explained["explanations"][0]["by_attempt"]
    assert len(attempt_scores) == 8 and explained["method"] == "integrated_gradients"
    assert explained["explanations"][0]["completeness_gap"] < 0.05


def test_behaviour_analysis_and_bias_over_learner_groups(kt: KT) -> None:
    r = kt.client.get(f"/v1/kt/{MODEL}/analysis", params={"dataset_id": kt.dataset_id})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {e["skill"] for e in body["calibration_by_skill"]} == {"c0", "c1", "c2"}
    assert body["by_position"][0]["from"] == 1 and body["cold_start"]["attempt_1_of_skill"]["n"] > 0
    assert 0.5 < body["overall"]["auc"] <= 1
    frame = kt.c.datasets.load(kt.dataset_id)
    learners = sorted(frame["learner_id"].unique())
    records = [
        {"subject_id": s, "attributes": {"group": "a" if i % 2 else "b"}}
        for i, s in enumerate(learners)
    ]
    r = kt.client.put("/v1/sensitive-attributes", json={"records": records})
    assert r.status_code == 200, r.text
    r = kt.client.post(
        "/v1/bias/detect",
        json={"model": MODEL, "dataset_id": kt.dataset_id, "attributes": ["group"]},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["joined"]["with_attributes"] == report["joined"]["rows"] == len(frame)
    assert set(report["attributes"]["group"]["groups"]) == {"a", "b"}


def test_erasing_a_learner_removes_answers_and_state(kt: KT) -> None:
    kt.client.post(
        f"/v1/kt/{MODEL}/learners/gone/answers",
        json={"answers": [{"item_id": "q1", "correct": 0}] * 3},
    )
    assert (
        kt.predict({"learner_id": "gone", "item_id": "q1"}).json()["outputs"][0]["history_length"]
        == 3
    )
    found = kt.client.get("/v1/subjects/gone").json()["found"]
    assert found["learner_answers"] == 3 and found["learner_states"] == 1
    kt.client.delete("/v1/subjects/gone")
    out = kt.predict({"learner_id": "gone", "item_id": "q1"}).json()["outputs"][0]
    assert out["learner_state"] == "new" and out["history_length"] == 0
