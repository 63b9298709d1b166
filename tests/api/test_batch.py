"""Batch prediction jobs over HTTP: submit, follow, download results (CSV and Parquet)."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pandas as pd
import pytest

from learnloop.core.auth import Role
from tests.api.conftest import Served


def wait_done(s: Served, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = s.client.get(f"/v1/batch/{job_id}", headers=s.auth(Role.INGEST)).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError("batch job did not finish")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_batch_over_a_dataset_matches_online_predictions(served: Served, fmt: str) -> None:
    body = {
        "model": served.model,
        "dataset_id": served.dataset_id,
        "format": fmt,
        "chunk_size": 300,
        "version": "1",
        "priority": "high",
    }
    r = served.client.post("/v1/batch", json=body, headers=served.auth(Role.INGEST))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.json()["priority"] == 10
    early = served.client.get(f"/v1/batch/{job_id}/results", headers=served.auth(Role.INGEST))
    assert early.status_code in (200, 409)
    job = wait_done(served, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["version"] == "1"
    dataset_rows = served.container.datasets.get(served.dataset_id).rows
    assert job["result"]["rows"] == dataset_rows
    progress = [
        e
        for e in served.client.get(f"/v1/jobs/{job_id}/events", headers=served.auth()).json()
        if e["kind"] == "progress" and e["fraction"] is not None
    ]
    assert len(progress) >= dataset_rows // 300
    r = served.client.get(f"/v1/batch/{job_id}/results", headers=served.auth(Role.INGEST))
    assert r.status_code == 200
    frame = (
        pd.read_csv(io.BytesIO(r.content))
        if fmt == "csv"
        else pd.read_parquet(io.BytesIO(r.content))
    )
    assert len(frame) == dataset_rows and "output_prediction" in frame
    online = served.container.serving.predict(served.model, served.rows[:5], version="1")
    assert list(frame["output_prediction"].head(5)) == [o["prediction"] for o in online.outputs]
    first = frame["output_probabilities"].iloc[0]
    probs = json.loads(first) if fmt == "csv" else first
    assert sum(v for v in probs.values() if v is not None) == pytest.approx(1.0)


def test_batch_refuses_bad_requests_before_queueing(served: Served) -> None:
    cases = [
        ({"model": "nope", "dataset_id": served.dataset_id}, 404),
        ({"model": served.model, "dataset_id": "ds-missing"}, 404),
        ({"model": served.model}, 422),
        ({"model": served.model, "dataset_id": served.dataset_id, "format": "xlsx"}, 422),
        ({"model": "", "dataset_id": served.dataset_id}, 422),
        ({"model": "a/b", "dataset_id": served.dataset_id}, 422),
        ({"model": "a:b", "dataset_id": served.dataset_id}, 422),
        ({"model": served.model, "dataset_id": served.dataset_id, "version": "abc"}, 422),
        ({"model": served.model, "dataset_id": served.dataset_id, "alias": "no/pe"}, 422),
    ]
    for body, status in cases:
        r = served.client.post("/v1/batch", json=body, headers=served.auth(Role.INGEST))
        assert r.status_code == status, (body, r.text)
    reader = served.client.post("/v1/batch", json=cases[0][0], headers=served.auth(Role.READER))
    assert reader.status_code == 403
    train_job = served.client.get(f"/v1/batch/{served.train_job_id}", headers=served.auth())
    assert train_job.status_code == 404
