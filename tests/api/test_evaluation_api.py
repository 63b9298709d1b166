"""Evaluation runs over the real app: a better and a worse candidate against the champion on a
frozen evaluation set, with paired-bootstrap gates and a latency profile."""

from __future__ import annotations

import pandas as pd

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS, train_version

MODEL = "evaluated"


def run(served: Served, candidate: str, dataset_id: str, **extra: object) -> dict:
    body = {
        "model": MODEL,
        "candidate": candidate,
        "dataset_id": dataset_id,
        "gates": [
            {"metric": "roc_auc", "max_drop": 0.01},
            {"metric": "log_loss", "max_drop": 0.01},
        ],
        "n_boot": 200,
        **extra,
    }
    r = served.client.post("/v1/evaluation/run", json=body, headers=served.auth(Role.OPERATOR))
    assert r.status_code == 202, r.text
    done = served.container.jobs.wait(r.json()["id"], 120)
    assert done.status.value == "succeeded", done.error
    got = served.client.get(f"/v1/evaluation/{done.id}", headers=served.auth(Role.READER))
    return dict(got.json()["result"])


def test_gates_tell_a_worse_candidate_from_a_good_one(served: Served, ai4i: pd.DataFrame) -> None:
    c = served.container
    rows = ai4i.sample(frac=1.0, random_state=1).reset_index(drop=True)
    train_version(c, rows.iloc[:4000], model=MODEL, alias="champion", n_estimators=60)
    same = train_version(c, rows.iloc[:4000], model=MODEL, n_estimators=60, seed=1)
    weak = train_version(
        c,
        rows.iloc[:4000],
        model=MODEL,
        n_estimators=60,
        max_depth=1,
        num_leaves=2,
        learning_rate=0.001,
    )
    frozen = rows.iloc[4000:7000].copy()
    frozen["split"] = "valid"
    ds = c.datasets.import_frame(
        frozen,
        family="tabular",
        params={"target": TARGET, "drop_columns": LEAKS},
        name="frozen-eval",
        source="test",
        actor="test",
    )
    good = run(served, same, ds.id, max_latency_p99_ms=1000)
    assert good["rows"] == 3000 and good["versions"] == {"candidate": same, "champion": "1"}
    assert good["passed"] is True, good["gates"]
    assert {g["metric"] for g in good["gates"]} == {"roc_auc", "log_loss", "p99_ms"}
    assert good["metrics"]["candidate"]["roc_auc"] > 0.9 and "ece" in good["metrics"]["champion"]
    assert good["latency"]["p99_ms"] > 0 and good["latency"]["requests"] == 100
    bad = run(served, weak, ds.id)
    assert bad["passed"] is False
    auc = next(g for g in bad["gates"] if g["metric"] == "roc_auc")
    assert auc["ci_high"] < 0 and auc["passed"] is False


def test_evaluation_errors(served: Served) -> None:
    h = served.auth()
    body = {"model": served.model, "candidate": "99", "dataset_id": served.dataset_id}
    assert served.client.post("/v1/evaluation/run", json=body, headers=h).status_code == 404
    assert served.client.get(f"/v1/evaluation/{served.train_job_id}", headers=h).status_code == 404
