"""Training runs over the real app: start → pause at a checkpoint → resume → a version with
the challenger alias and a learning curve; cancel; bad requests."""

from __future__ import annotations

import time
from typing import Any

from learnloop.core.auth import Role
from tests.api.conftest import TARGET, Served
from tests.conftest import LEAKS


def wait_for(served: Served, run_id: str, statuses: set[str], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = served.client.get(f"/v1/training/{run_id}", headers=served.auth()).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {statuses}: {body['status']}")


def start(served: Served, model: str, **params: Any) -> Any:
    body = {
        "family": "tabular",
        "model": model,
        "dataset_id": served.dataset_id,
        "params": {"target": TARGET, "drop_columns": LEAKS, **params},
    }
    return served.client.post("/v1/training/start", json=body, headers=served.auth(Role.OPERATOR))


def test_pause_resume_and_challenger(served: Served) -> None:
    r = start(served, "training-api", n_estimators=400, checkpoint_every=4, learning_rate=0.01)
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    wait_for(served, run_id, {"running"})
    deadline = time.monotonic() + 60
    while (
        served.client.get(f"/v1/training/{run_id}", headers=served.auth()).json()["progress"] <= 0
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (
        served.client.post(f"/v1/training/{run_id}/pause", headers=served.auth()).status_code == 200
    )
    paused = wait_for(served, run_id, {"paused", "succeeded"})
    assert paused["status"] == "paused", "the fit ended before the pause reached a checkpoint"
    done_before = paused["progress"]
    assert 0 < done_before < 1
    assert (
        served.client.post(f"/v1/training/{run_id}/resume", headers=served.auth()).status_code
        == 200
    )
    done = wait_for(served, run_id, {"succeeded", "failed"}, timeout=240)
    assert done["status"] == "succeeded", done["error"]
    assert done["version"] == "1" and done["mlflow_run_id"]
    curve = done["learning_curve"]
    assert curve and all(len(points) >= 2 for points in curve.values()), curve.keys()
    alias = served.client.get("/v1/models/training-api/aliases/challenger", headers=served.auth())
    assert alias.json()["version"] == "1"
    version = served.container.registry.get_version("training-api", "1")
    assert version.dataset_id == served.dataset_id and version.code_version


def test_cancel_and_errors(served: Served) -> None:
    r = start(served, "training-cancel", n_estimators=400, checkpoint_every=4, learning_rate=0.01)
    run_id = r.json()["id"]
    assert (
        served.client.post(f"/v1/training/{run_id}/cancel", headers=served.auth()).status_code
        == 200
    )
    assert wait_for(served, run_id, {"cancelled", "succeeded"})["status"] == "cancelled"
    bad = start(served, "training-bad", learning_rate=-1)
    assert bad.status_code == 422 and "learning_rate" in bad.text
    assert served.client.get("/v1/training/not-a-run", headers=served.auth()).status_code == 404
    reader = start(served, "x")
    assert reader.status_code == 202  # operators may train; readers may not:
    body = {"family": "tabular", "model": "y", "dataset_id": served.dataset_id, "params": {}}
    denied = served.client.post("/v1/training/start", json=body, headers=served.auth(Role.READER))
    assert denied.status_code == 403
    served.client.post(f"/v1/training/{reader.json()['id']}/cancel", headers=served.auth())
