"""The job runner with real handlers on a real SQLite store: outcomes, retries, control."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from learnloop.core.errors import InvalidInput, TrainingError
from learnloop.core.jobs import JobContext, JobRunner, JobService, RunnerConfig, parse_priority
from learnloop.core.records import JobStatus
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.jobs import SqlJobStore
from learnloop.storage.sql.stores import SqlAuditLog

FAST = RunnerConfig(poll_interval_s=0.02, heartbeat_interval_s=0.05, heartbeat_timeout_s=0.5)
STEPS = 20


def counting(ctx: JobContext) -> Mapping[str, Any]:
    """Counts to STEPS with a checkpoint per step; records where each attempt started."""
    state = ctx.load_checkpoint()
    start = int(state) if isinstance(state, int) else 0
    for step in range(start, STEPS):
        time.sleep(ctx.payload.get("sleep", 0.0))
        ctx.save_checkpoint(step + 1, step + 1)
        ctx.progress((step + 1) / STEPS, f"step {step + 1}", {"value": step + 1.0})
        ctx.check_control()
    return {"started_at": start, "total": STEPS}


attempts_seen: list[int] = []


def flaky(ctx: JobContext) -> Mapping[str, Any]:
    attempts_seen.append(ctx.job.attempts)
    if ctx.job.attempts < 2:
        raise RuntimeError("transient")
    return {"ok": True}


def always_broken(ctx: JobContext) -> None:
    raise RuntimeError("boom")


def bad_input(ctx: JobContext) -> None:
    raise InvalidInput("no such column")


def training_error(ctx: JobContext) -> None:
    raise TrainingError("diverged")


HANDLERS = {
    "count": counting,
    "flaky": flaky,
    "broken": always_broken,
    "bad": bad_input,
    "diverge": training_error,
}


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def service(sqlite_db: Database) -> JobService:
    return JobService(SqlJobStore(sqlite_db), SqlAuditLog(sqlite_db), lambda: set(HANDLERS))


@pytest.fixture
def runner(sqlite_db: Database, tmp_path: Path) -> Iterator[JobRunner]:
    r = JobRunner(SqlJobStore(sqlite_db), HANDLERS, tmp_path / "ckpt", FAST)
    r.start(2)
    yield r
    r.stop()


def test_success_records_result_progress_and_removes_checkpoint(
    service: JobService, runner: JobRunner, tmp_path: Path
) -> None:
    job = service.submit("count", {}, actor="t")
    done = service.wait(job.id, 30)
    assert done.status is JobStatus.SUCCEEDED
    assert dict(done.result or {}) == {"started_at": 0, "total": STEPS}
    fractions = [e.fraction for e in service.events(job.id) if e.kind == "progress"]
    assert fractions == [(i + 1) / STEPS for i in range(STEPS)]
    assert not (tmp_path / "ckpt" / job.id).exists()
    assert [e.action for e in service.audit.list(target=f"job:{job.id}")] == ["job.submit"]


@pytest.mark.parametrize("kind", ["bad", "diverge"])
def test_learnloop_errors_fail_at_once_with_traceback(
    service: JobService, runner: JobRunner, kind: str
) -> None:
    job = service.submit(kind, {}, max_attempts=3, actor="t")
    done = service.wait(job.id, 30)
    assert done.status is JobStatus.FAILED and done.attempts == 1
    assert done.traceback and "Traceback" in done.traceback


def test_unexpected_errors_are_retried_then_fail(service: JobService, runner: JobRunner) -> None:
    attempts_seen.clear()
    ok = service.submit("flaky", {}, max_attempts=3, actor="t")
    assert service.wait(ok.id, 30).status is JobStatus.SUCCEEDED
    assert attempts_seen == [1, 2]
    broken = service.submit("broken", {}, max_attempts=2, actor="t")
    done = service.wait(broken.id, 30)
    assert done.status is JobStatus.FAILED and done.attempts == 2
    assert done.error == "RuntimeError: boom"


def test_pause_then_resume_continues_from_the_checkpoint(
    service: JobService, runner: JobRunner
) -> None:
    job = service.submit("count", {"sleep": 0.05}, actor="t")
    service.wait(job.id, 30, until=lambda j: j.progress >= 0.2)
    service.pause(job.id, actor="t")
    paused = service.wait(job.id, 30, until=lambda j: j.status is JobStatus.PAUSED)
    stopped_at = round(paused.progress * STEPS)
    assert 0 < stopped_at < STEPS
    time.sleep(0.3)
    assert service.get(job.id).status is JobStatus.PAUSED  # nobody picks a paused job up
    service.resume(job.id, actor="t")
    done = service.wait(job.id, 30)
    assert done.status is JobStatus.SUCCEEDED
    assert dict(done.result or {})["started_at"] == stopped_at
    messages = [e.message for e in service.events(job.id)]
    assert f"resuming from checkpoint at step {stopped_at}" in messages
    assert [e.action for e in service.audit.list(target=f"job:{job.id}")][:2] == [
        "job.resume",
        "job.pause",
    ]


def test_cancel_stops_a_running_job_and_drops_its_checkpoint(
    service: JobService, runner: JobRunner, tmp_path: Path
) -> None:
    job = service.submit("count", {"sleep": 0.05}, actor="t")
    service.wait(job.id, 30, until=lambda j: j.progress >= 0.1)
    service.cancel(job.id, actor="t")
    done = service.wait(job.id, 30)
    assert done.status is JobStatus.CANCELLED and done.progress < 1.0
    assert not (tmp_path / "ckpt" / job.id).exists()


def test_job_of_a_dead_worker_is_requeued_and_resumes(
    sqlite_db: Database, service: JobService, tmp_path: Path
) -> None:
    store = SqlJobStore(sqlite_db)
    job = service.submit("count", {}, actor="t")
    claimed = store.claim("dead-worker", ["count"])
    assert claimed is not None and claimed.id == job.id
    # the dead worker got to step 7 and wrote its checkpoint, then vanished (no heartbeats)
    from learnloop.core.fitting import write_checkpoint

    write_checkpoint(tmp_path / "ckpt" / job.id, 7, 7)
    time.sleep(FAST.heartbeat_timeout_s + 0.1)
    live = JobRunner(store, HANDLERS, tmp_path / "ckpt", FAST)
    live.start(1)
    try:
        done = service.wait(job.id, 30)
    finally:
        live.stop()
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2
    assert dict(done.result or {})["started_at"] == 7
    assert any("stopped responding" in e.message for e in service.events(job.id))


def test_priority_names_and_unknown_kinds(service: JobService) -> None:
    assert [parse_priority(p) for p in ("high", "normal", "low", 3)] == [10, 0, -10, 3]
    with pytest.raises(InvalidInput, match="priority"):
        parse_priority("urgent")
    with pytest.raises(InvalidInput, match="kind"):
        service.submit("nope", {}, actor="t")
