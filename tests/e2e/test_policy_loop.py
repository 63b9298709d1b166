"""The whole loop, end to end, on the real app with real workers and the tabular family:

seed data → champion serving → drift injected in traffic and feedback → the drift monitor sees
it → the policy retrains (replaying the champion's data) → the candidate passes its gates →
shadow → canary steps → promoted; then a broken candidate is rolled back on its first failures
while every client request is answered. The lineage endpoint shows every step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from learnloop.api.app import create_app
from learnloop.container import Container
from learnloop.core.auth import Role
from tests.conftest import LEAKS, fast_settings, train_version

pytestmark = pytest.mark.slow
MODEL = "loop"
TARGET = "Machine failure"


class Loop:
    def __init__(self, c: Container, client: TestClient, token: str, rows: pd.DataFrame) -> None:
        self.c, self.client, self.rows = c, client, rows
        self.h = {"Authorization": f"Bearer {token}"}
        self.subject = 0
        self.failed_requests = 0

    def predict(self, frame: pd.DataFrame, per_request: int = 10) -> list[str]:
        inputs = json.loads(frame.drop(columns=[TARGET, *LEAKS]).to_json(orient="records"))
        ids: list[str] = []
        for i in range(0, len(inputs), per_request):
            self.subject += 1
            r = self.client.post(
                f"/v1/models/{MODEL}/predict",
                json={"inputs": inputs[i : i + per_request], "subject_id": f"s{self.subject}"},
                headers=self.h,
            )
            if r.status_code != 200:
                self.failed_requests += 1
            else:
                ids += r.json()["prediction_ids"]
        return ids

    def label(self, ids: list[str], frame: pd.DataFrame) -> None:
        events = [
            {"type": "label", "value": int(y), "prediction_id": p}
            for p, y in zip(ids, frame[TARGET], strict=True)
        ]
        for i in range(0, len(events), 5000):
            r = self.client.post(
                "/v1/feedback/batch", json={"events": events[i : i + 5000]}, headers=self.h
            )
            assert r.status_code == 201, r.text

    def tick(self) -> dict[str, Any]:
        assert self.c.ledger is not None and self.c.ledger.flush(10)
        r = self.client.post(f"/v1/models/{MODEL}/policy/tick", headers=self.h)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_job(self) -> None:
        job_id = self.c.policy.store.state(MODEL)[1]["job_id"]
        assert self.c.jobs.wait(job_id, 180).status.value == "succeeded"

    def events(self) -> list[str]:
        return [e["action"] for e in self.c.policy.store.events(MODEL)]


@pytest.fixture
def loop(tmp_path: Path, ai4i: pd.DataFrame) -> Iterator[Loop]:
    settings = fast_settings(tmp_path / "home", policy={"enabled": False})
    c = Container(settings).open()
    try:
        rows = ai4i.sample(frac=1.0, random_state=3).reset_index(drop=True)
        train_version(c, rows.iloc[:3000], model=MODEL, alias="champion", n_estimators=40)
        _, token = c.keys.create(Role.ADMIN, "loop", actor="test")
        with TestClient(create_app(c, workers=True)) as client:
            yield Loop(c, client, token, rows)
    finally:
        c.close()


POLICY = {
    "monitoring": {"drift_every_s": 0.5, "drift_window_s": 3600},
    "retrain": {"on_drift": True, "min_new_labels": None, "cooldown_s": 0},
    "training": {
        "params": {"n_estimators": 40},
        "include_champion_data": True,
        "valid_fraction": 0.3,
    },
    "gates": {
        "fairness": {
            "attributes": ["region"],
            "bounds": {"demographic_parity_difference": 0.5},
            "min_group_size": 10,
        },
        "metrics": [{"metric": "accuracy", "max_drop": 0.02}],
        "max_latency_p99_ms": 2000,
        "n_boot": 200,
    },
    "rollout": {"shadow_min_requests": 50, "canary_steps": [10, 50], "step_min_requests": 20},
    "rollback": {"max_error_rate": 0.01, "min_requests": 20},
}


def test_drift_to_promotion_then_rollback(loop: Loop) -> None:
    c, client, h = loop.c, loop.client, loop.h
    assert client.put(f"/v1/models/{MODEL}/policy", json=POLICY, headers=h).status_code == 200
    bad = client.put(
        f"/v1/models/{MODEL}/policy", json={"rollout": {"canary_steps": [50, 10]}}, headers=h
    )
    assert bad.status_code == 422
    assert loop.tick()["action"] == "wait"  # nothing has happened yet

    # drift in the incoming traffic, and feedback on it; subjects' regions go to the
    # sensitive-attribute store (the fairness gate joins them, the model never sees them)
    drifted = loop.rows.iloc[3000:4200].copy()
    drifted["Torque [Nm]"] += 12.0
    first = loop.subject + 1
    loop.label(loop.predict(drifted), drifted)
    regions = [
        {"subject_id": f"s{i}", "attributes": {"region": "north" if i % 2 else "south"}}
        for i in range(first, loop.subject + 1)
    ]
    r = client.put("/v1/sensitive-attributes", json={"records": regions}, headers=h)
    assert r.status_code == 200

    # the scheduled drift monitor sees it; the policy retrains, replaying the champion's rows
    time.sleep(0.6)
    assert loop.tick()["action"] == "retrain"
    reports = client.get(f"/v1/drift/reports/{MODEL}", headers=h).json()
    assert reports[0]["verdict"] is True
    loop.wait_job()
    step = loop.tick()
    assert step["action"] == "shadow", c.policy.store.events(MODEL)[-1]
    candidate = c.policy.store.state(MODEL)[1]["candidate"]
    assert candidate == "2"

    # shadow → canary → 50 % → 100 % → promoted
    loop.predict(loop.rows.iloc[4200:4800])
    deadline = time.monotonic() + 30
    while (step := loop.tick())["action"] == "wait":
        assert time.monotonic() < deadline, "shadow traffic never arrived"
        time.sleep(0.2)
    assert step["action"] == "canary"
    for _ in range(4):
        loop.predict(loop.rows.iloc[4800:5600])
        step = loop.tick()
        if step["action"] == "promoted":
            break
    assert step["action"] == "promoted", loop.events()
    assert c.registry.current(MODEL, "champion") == candidate
    assert loop.failed_requests == 0

    # a broken candidate: the new champion's data no longer drifts, so a scheduled retrain
    # (a new policy revision) brings the next candidate; it breaks once it takes canary traffic
    scheduled = {
        **POLICY,
        "retrain": {"on_drift": False, "min_new_labels": None, "every_s": 0.5, "cooldown_s": 0},
    }
    assert client.put(f"/v1/models/{MODEL}/policy", json=scheduled, headers=h).status_code == 200
    time.sleep(0.6)
    assert loop.tick()["action"] == "retrain"
    loop.wait_job()
    assert loop.tick()["action"] == "shadow"
    broken = c.policy.store.state(MODEL)[1]["candidate"]
    loop.predict(loop.rows.iloc[5600:6200])
    deadline = time.monotonic() + 30
    while (step := loop.tick())["action"] == "wait":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert step["action"] == "canary"

    def explode(items: object) -> object:
        raise RuntimeError("corrupt model")

    c.serving.models.get(MODEL, broken).instance.predict = explode  # type: ignore[method-assign]
    loop.predict(loop.rows.iloc[6200:6800])
    step = loop.tick()
    assert step["action"] == "rolled_back", loop.events()
    assert loop.failed_requests == 0  # the champion answered every failed candidate request
    assert c.deployments.get(MODEL).spec.mode == "single"
    assert c.registry.current(MODEL, "champion") == candidate
    alerts = client.get("/v1/alerts", params={"model": MODEL, "kind": "rollback"}, headers=h).json()
    assert len(alerts) == 1 and alerts[0]["severity"] == "critical"

    # the lineage shows every step, in order
    timeline = client.get(f"/v1/models/{MODEL}/lineage", headers=h).json()["events"]
    kinds = {e["kind"] for e in timeline}
    assert kinds >= {"data", "version", "alias", "rollout", "policy"}
    actions = [e["what"].split(":")[0] for e in timeline if e["kind"] == "policy"]
    order = [
        "drift_monitor",
        "retrain",
        "trained",
        "gates_passed",
        "shadow",
        "canary",
        "promoted",
        "rolled_back",
    ]
    positions = [actions.index(a) for a in order]
    assert positions == sorted(positions), actions
    gates = next(e for e in timeline if e["what"].startswith("gates_passed"))["details"]["gates"]
    assert {g["kind"] for g in gates} == {"metric", "latency", "fairness"}
    replay = [
        e
        for e in timeline
        if e["kind"] == "data" and (e["details"]["lineage"] or {}).get("source") == "replay"
    ]
    assert replay, "the retraining snapshot replays the champion's data"
