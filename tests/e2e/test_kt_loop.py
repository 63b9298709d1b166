"""The knowledge-tracing loop end to end, over HTTP: train a small DKT on a slice of
ASSISTments 2009, serve it, stream a learner's answers as feedback on its predictions, and see
the next prediction move with them; answers survive a fresh container (rebuilt from the store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from learnloop.api.app import create_app
from learnloop.container import Container
from learnloop.core.auth import Role
from learnloop.families.knowledge_tracing import load_interactions
from learnloop.storage.sql.answers import SqlLearnerAnswers
from tests.conftest import fast_settings

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "knowledge-tracing"
TRAIN = DATA / "dkvmn-assist2009" / "assist2009_updated_train1.csv"
MODEL = "kt-slice"


@pytest.fixture(scope="module")
def slice_frame() -> pd.DataFrame:
    if not TRAIN.exists():
        pytest.skip(f"dataset not found: {TRAIN}")
    frame = load_interactions(TRAIN, "dkvmn")
    learners = frame["learner_id"].unique()[:300]
    return frame[frame["learner_id"].isin(learners)].reset_index(drop=True)


def train(
    client: TestClient,
    c: Container,
    frame: pd.DataFrame,
    dataset_params: dict[str, Any] | None = None,
    alias: str = "champion",
    **params: Any,
) -> str:
    dataset = c.datasets.import_frame(
        frame,
        family="knowledge_tracing",
        params=dataset_params or {},
        name="kt-slice",
        source="test",
        actor="test",
    )
    params = {**(dataset_params or {}), **params}
    body = {
        "family": "knowledge_tracing",
        "model": MODEL,
        "dataset_id": dataset.id,
        "alias": alias,
        "params": {"model": "dkt", "epochs": 5, "hidden": 32, "embed_dim": 32, "threads": 1,
                   "order_column": "order", **params},
    }  # fmt: skip
    r = client.post("/v1/training/start", json=body)
    assert r.status_code == 202, r.text
    run = r.json()["id"]
    deadline = time.monotonic() + 240
    while True:
        status = client.get(f"/v1/training/{run}").json()
        if status["status"] in ("succeeded", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "succeeded", status
    return str(status["result"]["version"])


def predict(client: TestClient, learner: str, skill: str) -> tuple[float, str, dict[str, Any]]:
    r = client.post(
        f"/v1/models/{MODEL}/predict",
        json={"inputs": [{"learner_id": learner, "skill_ids": [skill]}], "subject_id": learner},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["outputs"][0]["probability"], body["prediction_ids"][0], body["outputs"][0]


def test_answers_as_feedback_move_the_next_prediction(
    tmp_path: Path, slice_frame: pd.DataFrame
) -> None:
    settings = fast_settings(tmp_path)
    skill = str(slice_frame["skill_ids"].value_counts().index[0])
    c = Container(settings).open()
    _, token = c.keys.create(Role.ADMIN, "kt", actor="test")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(c), headers=auth) as client:
        version = train(client, c, slice_frame)
        before, _, out = predict(client, "ana", skill)
        assert out["learner_state"] == "new" and out["history_length"] == 0
        # five right answers, each given as a label on the prediction that preceded it
        rising = [before]
        for _ in range(5):
            p, prediction_id, _ = predict(client, "ana", skill)
            r = client.post(
                "/v1/feedback",
                json={"prediction_id": prediction_id, "type": "label", "value": 1},
            )
            assert r.status_code in (200, 201), r.text
            rising.append(predict(client, "ana", skill)[0])
        assert rising[-1] > before + 0.03, rising
        _, _, out = predict(client, "ana", skill)
        assert out["learner_state"] == "stored" and out["history_length"] == 5
        # a second learner answers wrong: the prediction falls
        low_start, _, _ = predict(client, "bo", skill)
        r = client.post(
            f"/v1/kt/{MODEL}/learners/bo/answers",
            json={"answers": [{"skill_ids": [skill], "correct": 0}] * 5},
        )
        assert r.status_code == 200 and r.json()["stored"] == 5, r.text
        assert predict(client, "bo", skill)[0] < low_start - 0.03
        insights = client.get(f"/v1/kt/{MODEL}/learners/ana/insights").json()
        assert insights["version"] == version and insights["attempts"] == 5
        assert insights["mastery"][skill] == pytest.approx(rising[-1], abs=1e-3)
        assert insights["trend"]["attempts"] == 5
        recs = insights["recommendations"]
        assert recs and all(0 <= x["probability"] <= 1 for x in recs)
        explained = client.post(
            f"/v1/kt/{MODEL}/explain", json={"input": {"learner_id": "ana", "skill_ids": [skill]}}
        ).json()
        assert explained["method"] == "integrated_gradients"
        assert len(explained["by_attempt"]) == 5
        assert all(v > 0 for v in explained["by_attempt"].values())  # right answers push up
        final_ana = predict(client, "ana", skill)[0]
        for _ in range(5):  # a third learner, wrong five times, through feedback again
            _, prediction_id, _ = predict(client, "carl", skill)
            r = client.post(
                "/v1/feedback", json={"prediction_id": prediction_id, "type": "label", "value": 0}
            )
            assert r.status_code == 201, r.text
        assert predict(client, "carl", skill)[0] < before
        # the answers given as feedback feed the next retraining (the loop's dataset)
        r = client.post("/v1/datasets/from-feedback", json={"model": MODEL, "name": "kt-loop"})
        assert r.status_code == 201, r.text
        loop_set = c.datasets.load(r.json()["dataset"]["id"])
        assert set(loop_set["learner_id"]) == {"ana", "carl"} and len(loop_set) == 10
        assert loop_set["correct"].astype(int).sum() == 5
        answers = client.post(f"/v1/kt/{MODEL}/datasets", json={"valid_fraction": 0.3}).json()
        assert answers["rows"] == 15  # as feedback: ana's 5, carl's 5; as answers: bo's 5
        # a retraining on the loop's dataset (what the policy runs) gives a working version
        retrained = train(
            client, c, loop_set, dataset_params={"split_column": "split"}, alias="challenger"
        )
        assert retrained != version
        final_carl = predict(client, "carl", skill)[0]
    # a crash between a feedback commit and the copy of its answer loses the copy: here carl's
    # five copies are gone (the feedback itself is kept)
    fresh = Container(settings)
    assert SqlLearnerAnswers(fresh.db).erase("carl") == 5
    # a fresh process: states are rebuilt from the stored answers
    with TestClient(create_app(fresh), headers=auth) as client:
        p, _, out = predict(client, "ana", skill)
        assert out["learner_state"] == "stored" and out["history_length"] == 5
        assert p == pytest.approx(final_ana, abs=1e-6)
        assert predict(client, "carl", skill)[2]["history_length"] == 0
        # reconciling replays the ledger ⋈ feedback join: carl's answers come back, once
        r = client.post(f"/v1/kt/{MODEL}/answers/reconcile")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "model": MODEL, "feedback_events": 10, "restored": 5, "already_stored": 5,
        }  # fmt: skip
        p, _, out = predict(client, "carl", skill)
        assert out["history_length"] == 5 and p == pytest.approx(final_carl, abs=1e-6)
        again = client.post(f"/v1/kt/{MODEL}/answers/reconcile").json()
        assert (again["restored"], again["already_stored"]) == (0, 10)
        assert client.post("/v1/kt/no-such-model/answers/reconcile").status_code == 404
    # with the server down, the operator command does the same from the command line
    assert SqlLearnerAnswers(fresh.db).erase("carl") == 5
    fresh.close()
    later = cli(settings.home, "kt", "reconcile", MODEL, "--since", "2999-01-01")
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["feedback_events"] == 0  # nothing predicted after 2999
    done = cli(settings.home, "kt", "reconcile", MODEL)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "model": MODEL, "feedback_events": 10, "restored": 5, "already_stored": 5,
    }  # fmt: skip
    unknown = cli(settings.home, "kt", "reconcile", "no-such-model")
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr
    bad = cli(settings.home, "kt", "reconcile", MODEL, "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEARNLOOP_HOME": str(home), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "learnloop", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
