"""The loop against a real ``learnloop serve`` process, over HTTP only: its in-process job
worker trains, and its policy runner ticks on its own. Seed a champion, let drifted traffic and
feedback arrive, and watch the server's own policy take the candidate through its gates, shadow
and canary steps to promotion."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from benchmarks.common.processes import free_port, start_server
from tests.cli.test_cli import run
from tests.conftest import LEAKS

pytestmark = pytest.mark.slow
MODEL = "served-loop"
TARGET = "Machine failure"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    home = tmp_path / "home"
    created = run(home, "keys", "create", "--role", "admin")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    port = free_port()
    env = {
        **os.environ,
        "LEARNLOOP_HOME": str(home),
        "LEARNLOOP_JOBS__WORKERS": "1",
        "LEARNLOOP_JOBS__POLL_INTERVAL_S": "0.1",
        "LEARNLOOP_POLICY__TICK_S": "0.5",
        "LEARNLOOP_LOGGING__LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "learnloop", "serve", "--port", str(port)]
    proc = start_server("learnloop", cmd, log_path=tmp_path / "server.log", env=env)
    try:
        proc.wait_healthy(f"http://127.0.0.1:{port}/v1/health")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as client:
            yield client, str(tmp_path / "server.log")
    finally:
        proc.stop()


def wait_for(client: httpx.Client, action: str, feed: Any = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        events = client.get(f"/v1/models/{MODEL}/policy/events").json()
        if any(e["action"] == action for e in events):
            return
        if any(e["action"] in ("rejected", "rolled_back", "training_failed") for e in events):
            raise AssertionError(f"the loop stopped: {events[-1]}")
        assert time.monotonic() < deadline, f"no {action!r} yet: {[e['action'] for e in events]}"
        if feed is not None:
            feed()
        time.sleep(0.3)


def test_a_real_server_closes_the_loop(
    server: tuple[httpx.Client, str], ai4i: pd.DataFrame
) -> None:
    client, _ = server
    rows = ai4i.sample(frac=1.0, random_state=3).reset_index(drop=True)
    csv = io.BytesIO()
    rows.iloc[:3000].to_csv(csv, index=False)
    params = {"target": TARGET, "drop_columns": LEAKS}
    ds = client.post(
        "/v1/datasets",
        params={"family": "tabular", "name": "seed", "params": json.dumps(params)},
        content=csv.getvalue(),
    )
    assert ds.status_code == 201, ds.text
    start = client.post(
        "/v1/training/start",
        json={
            "family": "tabular",
            "model": MODEL,
            "dataset_id": ds.json()["id"],
            "params": {**params, "n_estimators": 40},
            "alias": "champion",
        },
    )
    assert start.status_code == 202, start.text
    deadline = time.monotonic() + 120
    while client.get(f"/v1/training/{start.json()['id']}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.3)

    policy = {
        "monitoring": {"drift_every_s": 1, "drift_window_s": 3600},
        "retrain": {"on_drift": True, "min_new_labels": None, "cooldown_s": 0},
        "training": {"params": {"n_estimators": 40}, "valid_fraction": 0.3},
        "gates": {"metrics": [{"metric": "accuracy", "max_drop": 0.02}], "n_boot": 200},
        "rollout": {"shadow_min_requests": 50, "canary_steps": [10, 50], "step_min_requests": 20},
    }
    assert client.put(f"/v1/models/{MODEL}/policy", json=policy).status_code == 200

    inputs = json.loads(rows.drop(columns=[TARGET, *LEAKS]).to_json(orient="records"))
    cursor = {"at": 3000, "subject": 0}

    def traffic(n: int = 200, shift: float = 0.0, label: bool = False) -> None:
        start_at = cursor["at"]
        batch = inputs[start_at : start_at + n]
        for item in batch:
            item["Torque [Nm]"] += shift
        ids: list[str] = []
        for i in range(0, len(batch), 10):
            cursor["subject"] += 1
            r = client.post(
                f"/v1/models/{MODEL}/predict",
                json={"inputs": batch[i : i + 10], "subject_id": f"s{cursor['subject']}"},
            )
            assert r.status_code == 200, r.text
            ids += r.json()["prediction_ids"]
        if label:
            labels = rows[TARGET].iloc[start_at : start_at + n].tolist()
            events = [
                {"type": "label", "value": int(y), "prediction_id": p}
                for p, y in zip(ids, labels, strict=True)
            ]
            assert client.post("/v1/feedback/batch", json={"events": events}).status_code == 201
        cursor["at"] += n

    traffic(1200, shift=12.0, label=True)  # drifted traffic, with its labels
    wait_for(client, "retrain")
    wait_for(client, "shadow")
    wait_for(client, "promoted", feed=lambda: traffic(200, shift=12.0))

    status = client.get(f"/v1/models/{MODEL}/policy").json()
    assert status["stage"] == "idle"
    champion = client.get(f"/v1/models/{MODEL}/aliases/champion").json()
    assert champion["version"] == "2"
    actions = [e["action"] for e in client.get(f"/v1/models/{MODEL}/policy/events").json()]
    for step in (
        "drift_monitor",
        "retrain",
        "trained",
        "gates_passed",
        "shadow",
        "canary",
        "promoted",
    ):
        assert step in actions, actions
    lineage = client.get(f"/v1/models/{MODEL}/lineage").json()["events"]
    assert {e["kind"] for e in lineage} >= {"data", "version", "alias", "rollout", "policy"}
