"""The server under fuzz: a learnloop home with demo data, served by ``learnloop serve``.

``prepare`` builds the home with the library (training needs job workers): the AI4I sample
imported as a dataset, the model ``failure`` trained by a real ``train`` job with ``champion``
on version 1, a throwaway model ``scratch`` trained the same way, a finished batch-prediction
job, and an admin key for the fuzzer. ``serving`` starts ``learnloop serve`` on that home in a
process of its own (job workers and the policy runner off, see ``server_env``) and ``seed_http``
adds, over HTTP, what the routes read back: a prediction, a feedback event, an alert channel, a
spare key and a queued job for the state-changing routes to act on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from benchmarks.common.processes import free_port, start_server
from learnloop.container import Container
from learnloop.core.auth import Role
from learnloop.loop.training import TrainRequest
from learnloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
AI4I = ROOT.parent / "shared/datasets/predictive-maintenance/ai4i2020/ai4i2020.csv"
MODEL = "failure"
SCRATCH = "scratch"
TARGET = "Machine failure"
LEAKS = ["TWF", "HDF", "PWF", "OSF", "RNF"]  # failure-mode flags determine the target
SUBJECT = "machine-7"
SCRATCH_SUBJECT = "scratch-subject"
LEARNER = "learner-1"


@dataclass(frozen=True)
class Demo:
    """What the home holds; ids the fuzzer aims at (real ones) or steers to (scratch ones)."""

    home: Path
    token: str
    admin_key_id: str
    dataset_id: str
    scratch_dataset_id: str
    train_job_id: str
    batch_job_id: str
    rows: list[dict[str, Any]]
    prediction_id: str = ""
    event_id: str = ""
    channel_id: str = ""
    scratch_key_id: str = ""
    scratch_job_id: str = ""


def ai4i_sample(path: Path = AI4I) -> pd.DataFrame:
    """2,000 rows of AI4I 2020, stratified on the target, fixed seed."""
    frame = pd.read_csv(path, encoding="utf-8-sig")
    parts = [g.sample(frac=0.2, random_state=0) for _, g in frame.groupby(TARGET)]
    return pd.concat(parts).sort_values("UDI").reset_index(drop=True)


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        jobs={"workers": 1, "poll_interval_s": 0.05, "heartbeat_interval_s": 0.2},
        logging={"level": "WARNING"},
    )  # type: ignore[arg-type]


def prepare(home: Path, data: Path = AI4I) -> Demo:
    """Build the home: dataset, ``failure`` and ``scratch`` trained, a batch job, an admin key."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    frame = ai4i_sample(data)
    params = {"target": TARGET, "drop_columns": LEAKS, "n_estimators": 30}
    c = Container(_settings(home)).open()
    try:
        dataset = c.datasets.import_frame(
            frame, family="tabular", params={"target": TARGET}, name="ai4i", source="fuzz",
            actor="fuzz",
        )  # fmt: skip
        scratch_dataset = c.datasets.import_frame(
            frame.head(500), family="tabular", params={"target": TARGET}, name="ai4i-scratch",
            source="fuzz", actor="fuzz",
        )  # fmt: skip
        c.start_workers(1)
        jobs = []
        for model in (MODEL, SCRATCH):
            request = c.training.validate(
                TrainRequest(
                    family="tabular", model=model, dataset_id=dataset.id, params=params,
                    alias="champion",
                )
            )  # fmt: skip
            jobs.append(c.jobs.submit("train", request.model_dump(), actor="fuzz"))
        for job in jobs:
            done = c.jobs.wait(job.id, 300)
            if done.status.value != "succeeded":
                raise RuntimeError(f"training {job.id} {done.status.value}: {done.error}")
        payload = {"model": MODEL, "dataset_id": dataset.id, "format": "parquet"}
        c.batch.parse(payload)
        batch = c.jobs.wait(c.jobs.submit("batch_predict", payload, actor="fuzz").id, 300)
        if batch.status.value != "succeeded":
            raise RuntimeError(f"batch prediction {batch.status.value}: {batch.error}")
        record, token = c.keys.create(Role.ADMIN, "fuzz-admin", actor="fuzz")
        features = frame.drop(columns=[TARGET, *LEAKS, "UDI", "Product ID"]).head(3)
        rows = features.to_dict(orient="records")
        return Demo(
            home=home,
            token=token,
            admin_key_id=record.id,
            dataset_id=dataset.id,
            scratch_dataset_id=scratch_dataset.id,
            train_job_id=jobs[0].id,
            batch_job_id=batch.id,
            rows=[{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows],
        )
    finally:
        c.close()


def server_env(home: Path) -> dict[str, str]:
    """No job workers: jobs the fuzzer submits (training, tuning, synthesis of up to 10M rows,
    batch prediction of any readable file) stay queued, so the run measures the API rather than
    the training it could start, and pause/resume/cancel act on queued jobs. No policy ticks on a
    timer: the fuzzer ticks through ``POST /v1/models/{name}/policy/tick`` instead."""
    return {
        **os.environ,
        "LEARNLOOP_HOME": str(home),
        "LEARNLOOP_JOBS__WORKERS": "0",
        "LEARNLOOP_POLICY__ENABLED": "false",
        "LEARNLOOP_LOGGING__LEVEL": "WARNING",
    }


@contextmanager
def serving(home: Path, log_path: Path) -> Iterator[str]:
    """``learnloop serve`` on ``home`` on a free port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "learnloop", "serve", "--port", str(port)]
    proc = start_server("learnloop", cmd, log_path=log_path, env=server_env(home))
    base_url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_healthy(f"{base_url}/v1/health")
        yield base_url
    finally:
        proc.stop()


def seed_http(base_url: str, demo: Demo) -> Demo:
    """Through the API: a prediction and feedback on it (subject ``SUBJECT``), an alert channel,
    a spare key and a queued training job on ``scratch``."""
    headers = {"Authorization": f"Bearer {demo.token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = client.post(path, json=body)
            if response.status_code >= 300:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
            answer: dict[str, Any] = response.json()
            return answer

        predicted = post(
            f"/v1/models/{MODEL}/predict", {"inputs": demo.rows[:1], "subject_id": SUBJECT}
        )
        prediction_id = predicted["prediction_ids"][0]
        event = post(
            "/v1/feedback",
            {"type": "label", "prediction_id": prediction_id, "subject_id": SUBJECT, "value": 0},
        )
        post(f"/v1/models/{SCRATCH}/predict", {"inputs": demo.rows, "subject_id": SCRATCH_SUBJECT})
        channel = post("/v1/alerts/configure", {"name": "fuzz-log", "kind": "log"})
        key = post("/v1/keys", {"role": "reader", "name": "fuzz-spare"})
        job = post(
            "/v1/jobs",
            {
                "kind": "train",
                "payload": {
                    "family": "tabular",
                    "model": SCRATCH,
                    "dataset_id": demo.scratch_dataset_id,
                    "params": {"target": TARGET},
                },
            },
        )
    return replace(
        demo,
        prediction_id=prediction_id,
        event_id=event["id"],
        channel_id=channel["id"],
        scratch_key_id=key["id"],
        scratch_job_id=job["id"],
    )


def logged_errors(log_path: Path) -> dict[str, int]:
    """The server's logged errors, by their last line (the exception), most frequent first."""
    counts: dict[str, int] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("level") not in ("error", "critical"):
            continue
        exc = str(record.get("exc") or "").strip()
        what = exc.splitlines()[-1] if exc else str(record.get("msg"))
        where = record.get("path")
        key = f"{what} ({where})" if where else what
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
