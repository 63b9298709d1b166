"""Real ``learnloop worker`` processes training a real model: kill -9, pause and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from learnloop.container import Container
from learnloop.core.records import JobRecord, JobStatus
from learnloop.loop.training import TrainRequest
from tests.conftest import LEAKS, fast_settings

pytestmark = pytest.mark.slow

# long enough to be interrupted: ~10 ms per tree, a checkpoint every 25 trees
PARAMS = {
    "target": "Machine failure",
    "drop_columns": LEAKS,
    "estimator": "random_forest",
    "n_estimators": 1000,
    "checkpoint_every": 25,
}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def container(home: Path) -> Iterator[Container]:
    c = Container(fast_settings(home)).open()
    yield c
    c.close()


def env_for(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LEARNLOOP_HOME": str(home),
        "LEARNLOOP_JOBS__HEARTBEAT_INTERVAL_S": "0.2",
        "LEARNLOOP_JOBS__HEARTBEAT_TIMEOUT_S": "2",
        "LEARNLOOP_JOBS__POLL_INTERVAL_S": "0.1",
        "LEARNLOOP_LOGGING__LEVEL": "WARNING",
    }


def start_worker(home: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "learnloop", "worker"],
        env=env_for(home),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def submit_training(c: Container, frame: pd.DataFrame) -> JobRecord:
    dataset = c.datasets.import_frame(
        frame, family="tabular", params=PARAMS, name="ai4i", source="test", actor="test"
    )
    request = c.training.validate(
        TrainRequest(family="tabular", model="failure", dataset_id=dataset.id, params=PARAMS)
    )
    return c.jobs.submit("train", request.model_dump(), actor="test")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_job_of_a_killed_worker_is_requeued_and_finishes_from_its_checkpoint(
    container: Container, home: Path, ai4i: pd.DataFrame, tmp_path: Path
) -> None:
    job = submit_training(container, ai4i)
    log = tmp_path / "worker.log"
    first = start_worker(home, log)
    try:
        running = container.jobs.wait(job.id, 120, until=lambda j: j.progress >= 0.15)
        assert running.status is JobStatus.RUNNING
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop(first)
    killed_at = container.jobs.get(job.id)
    assert killed_at.status is JobStatus.RUNNING  # nobody knows yet that its worker died
    second = start_worker(home, log)
    try:
        done = container.jobs.wait(job.id, 180)
    finally:
        stop(second)
    assert done.status is JobStatus.SUCCEEDED, (done.error, log.read_text()[-3000:])
    assert done.attempts == 2
    messages = [e.message for e in container.jobs.events(job.id)]
    assert any("re-queued: worker" in m and "stopped responding" in m for m in messages)
    resumed = [m for m in messages if m.startswith("resuming from checkpoint at step")]
    assert len(resumed) == 1 and int(resumed[0].rsplit(" ", 1)[1]) >= 100
    version = container.registry.get_version("failure", done.result["version"])  # type: ignore[index]
    assert version.dataset_id == done.payload["dataset_id"]
    assert version.metrics["roc_auc"] > 0.9


def test_pause_and_resume_through_a_worker_process(
    container: Container, home: Path, ai4i: pd.DataFrame, tmp_path: Path
) -> None:
    job = submit_training(container, ai4i)
    worker = start_worker(home, tmp_path / "worker.log")
    try:
        container.jobs.wait(job.id, 120, until=lambda j: j.progress >= 0.1)
        container.jobs.pause(job.id, actor="test")
        paused = container.jobs.wait(job.id, 60, until=lambda j: j.status is JobStatus.PAUSED)
        paused_step = round(paused.progress * PARAMS["n_estimators"])
        assert 0 < paused_step < PARAMS["n_estimators"]
        events_before = container.jobs.events(job.id)
        container.jobs.resume(job.id, actor="test")
        done = container.jobs.wait(job.id, 180)
    finally:
        stop(worker)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 1  # a pause is no attempt
    after = container.jobs.events(job.id, after_seq=events_before[-1].seq)
    assert f"resuming from checkpoint at step {paused_step}" in [e.message for e in after]
    first_progress = next(e.fraction for e in after if e.kind == "progress")
    assert first_progress is not None and first_progress >= paused.progress  # not from 0
    # the resumed fit continued the same MLflow run rather than starting a new one
    version = container.registry.get_version("failure", done.result["version"])  # type: ignore[index]
    run = container.model_registry.client.get_run(version.run_id)
    assert run.data.tags["learnloop.job_id"] == job.id
    assert run.info.status == "FINISHED"
    experiment = container.model_registry.experiment_id()
    runs = container.model_registry.client.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [version.run_id]
