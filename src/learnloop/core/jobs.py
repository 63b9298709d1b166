"""Durable jobs: submit, follow, pause/resume/cancel, and the worker that runs them.

A :class:`JobRunner` is one worker process's loop (threads inside ``learnloop serve`` or a
separate ``learnloop worker``). It claims queued jobs, runs the handler registered for the
job's kind with a :class:`JobContext`, and while the handler runs a heartbeat thread refreshes
the job's heartbeat and fetches pending control requests. Pause and cancel are cooperative: the
handler calls ``ctx.check_control()`` at safe points (after a checkpoint) and the context raises
``JobPaused``/``JobCancelled``.

A job whose worker died (no heartbeat for ``heartbeat_timeout_s``) is re-queued by any live
runner's reaper and continues from its last checkpoint; a job out of attempts fails.

Handler errors: a :class:`LearnloopError` (bad data, unknown model…) fails the job at once;
any other exception is retried while attempts remain (``max_attempts``).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from learnloop.core.errors import (
    Conflict,
    InvalidInput,
    Issue,
    JobCancelled,
    JobInterrupted,
    JobPaused,
    LearnloopError,
    NotFound,
)
from learnloop.core.fitting import read_checkpoint, write_checkpoint
from learnloop.core.ids import new_id
from learnloop.core.records import JobControl, JobEvent, JobRecord, JobStatus
from learnloop.core.stores import AuditLog, JobStore

log = logging.getLogger("learnloop.jobs")

PRIORITIES = {"high": 10, "normal": 0, "low": -10}

JobHandler = Callable[["JobContext"], Mapping[str, Any] | None]


MAX_PRIORITY = 1000


def parse_priority(value: int | str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_PRIORITY <= value <= MAX_PRIORITY:
            raise InvalidInput(
                "invalid priority",
                [Issue("priority", f"use an integer from {-MAX_PRIORITY} to {MAX_PRIORITY}")],
            )
        return value
    if value in PRIORITIES:
        return PRIORITIES[value]
    raise InvalidInput("invalid priority", [Issue("priority", f"{value!r}: use high|normal|low")])


@dataclass(frozen=True)
class RunnerConfig:
    poll_interval_s: float = 0.5
    heartbeat_interval_s: float = 2.0
    heartbeat_timeout_s: float = 30.0


class JobService:
    """What adapters call: submit, inspect and steer jobs."""

    def __init__(
        self,
        store: JobStore,
        audit: AuditLog,
        kinds: Callable[[], set[str]],
        default_max_attempts: int = 3,
    ) -> None:
        self.store = store
        self.audit = audit
        self._kinds = kinds
        self.default_max_attempts = default_max_attempts

    def submit(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        priority: int | str = "normal",
        max_attempts: int | None = None,
        actor: str,
    ) -> JobRecord:
        if kind not in self._kinds():
            known = ", ".join(sorted(self._kinds()))
            raise InvalidInput("unknown job kind", [Issue("kind", f"{kind!r}; known: {known}")])
        job = self.store.submit(
            kind,
            payload,
            priority=parse_priority(priority),
            max_attempts=max_attempts or self.default_max_attempts,
            submitted_by=actor,
        )
        self.audit.append(actor, "job.submit", f"job:{job.id}", {"kind": kind})
        log.info("job submitted", extra={"job_id": job.id, "kind": kind})  # ties request to job
        return job

    def get(self, job_id: str) -> JobRecord:
        job = self.store.get(job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job

    def list(
        self, *, status: JobStatus | None = None, kind: str | None = None, limit: int = 100
    ) -> builtins.list[JobRecord]:
        return self.store.list(status=status, kind=kind, limit=limit)

    def events(self, job_id: str, after_seq: int = 0) -> builtins.list[JobEvent]:
        self.get(job_id)
        return self.store.events(job_id, after_seq)

    def pause(self, job_id: str, *, actor: str) -> JobRecord:
        return self._control(job_id, JobControl.PAUSE, actor)

    def cancel(self, job_id: str, *, actor: str) -> JobRecord:
        return self._control(job_id, JobControl.CANCEL, actor)

    def resume(self, job_id: str, *, actor: str) -> JobRecord:
        job = self.store.resume(job_id)
        self.audit.append(actor, "job.resume", f"job:{job_id}", {})
        return job

    def _control(self, job_id: str, control: JobControl, actor: str) -> JobRecord:
        job = self.store.request_control(job_id, control)
        self.audit.append(actor, f"job.{control.value}", f"job:{job_id}", {})
        return job

    def wait(
        self,
        job_id: str,
        timeout_s: float = 600.0,
        poll_s: float = 0.2,
        until: Callable[[JobRecord], bool] = lambda j: j.status.finished,
    ) -> JobRecord:
        """Poll until ``until(job)`` holds (default: finished); ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status.value} after {timeout_s}s")
            time.sleep(poll_s)


class JobContext:
    """Given to a handler: the job, progress reporting, checkpoints and control checks.

    Satisfies :class:`~learnloop.core.family.FitContext`, so a family's ``fit`` can take it
    directly."""

    def __init__(self, job: JobRecord, store: JobStore, worker_id: str, checkpoint_dir: Path):
        self.job = job
        self.store = store
        self.worker_id = worker_id
        self.checkpoint_dir = checkpoint_dir
        self.control: JobControl | None = job.control
        self.lost = False
        self.metric_sinks: list[Callable[[Mapping[str, float], int | None], None]] = []
        self._step: int | None = None

    @property
    def payload(self) -> Mapping[str, Any]:
        return self.job.payload

    @property
    def resumed(self) -> bool:
        return read_checkpoint(self.checkpoint_dir) is not None

    def progress(
        self, fraction: float, message: str = "", metrics: Mapping[str, float] | None = None
    ) -> None:
        self.store.report(self.job.id, fraction=fraction, message=message, metrics=metrics)
        if metrics:
            for sink in self.metric_sinks:
                sink(metrics, self._step)

    def log(self, message: str) -> None:
        self.store.report(self.job.id, fraction=None, message=message, kind="log")

    def save_checkpoint(self, state: object, step: int) -> None:
        write_checkpoint(self.checkpoint_dir, state, step)
        self._step = step

    def load_checkpoint(self) -> object | None:
        found = read_checkpoint(self.checkpoint_dir)
        if found is None:
            return None
        self._step = found[0]
        self.log(f"resuming from checkpoint at step {found[0]}")
        return found[1]

    def check_control(self) -> None:
        if self.lost:
            raise JobInterrupted(f"job {self.job.id} was taken from this worker")
        if self.control is JobControl.CANCEL:
            raise JobCancelled(f"job {self.job.id} cancelled")
        if self.control is JobControl.PAUSE:
            raise JobPaused(f"job {self.job.id} paused at step {self._step}")


class JobRunner:
    """One worker: ``threads`` job loops, a heartbeat per running job, and a reaper."""

    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, JobHandler],
        checkpoints_dir: Path,
        config: RunnerConfig = RunnerConfig(),
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.checkpoints_dir = checkpoints_dir
        self.config = config
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{new_id()[-8:]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, threads: int = 1) -> None:
        self.store.worker_beat(self.worker_id, socket.gethostname(), os.getpid())
        self._threads = [
            threading.Thread(target=self._loop, name=f"ll-job-{i}", daemon=True)
            for i in range(threads)
        ]
        self._threads.append(threading.Thread(target=self._maintain, name="ll-reaper", daemon=True))
        for t in self._threads:
            t.start()
        log.info("worker started", extra={"worker_id": self.worker_id, "threads": threads})

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)
        with contextlib.suppress(Exception):  # the database may be gone at shutdown
            self.store.worker_gone(self.worker_id)

    @property
    def job_threads(self) -> int:
        """Job loops running in this runner (the reaper thread not counted)."""
        return sum(1 for t in self._threads if t.name.startswith("ll-job-") and t.is_alive())

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # keep the worker alive; the error is logged
                log.exception("job loop error")
                worked = False
            if not worked:
                self._stop.wait(self.config.poll_interval_s)

    def _maintain(self) -> None:
        while not self._stop.wait(self.config.heartbeat_interval_s):
            try:
                self.store.worker_beat(self.worker_id, socket.gethostname(), os.getpid())
                self.reap()
            except Exception:
                log.exception("worker maintenance error")

    def reap(self) -> list[JobRecord]:
        """Re-queue jobs whose worker stopped sending heartbeats."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.config.heartbeat_timeout_s)
        changed = self.store.requeue_stale(cutoff)
        for job in changed:
            log.warning("re-queued stale job", extra={"job_id": job.id, "status": job.status})
        return changed

    # -- running one job --------------------------------------------------------------------

    def run_once(self) -> bool:
        """Claim and run one job; ``False`` if none was queued."""
        job = self.store.claim(self.worker_id, list(self.handlers))
        if job is None:
            return False
        ctx = JobContext(job, self.store, self.worker_id, self.checkpoints_dir / job.id)
        beat_stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat,
            args=(ctx, beat_stop),
            name=f"ll-beat-{job.id[-6:]}",
            daemon=True,
        )
        beat.start()
        try:
            self._execute(ctx)
        finally:
            beat_stop.set()
            beat.join()
        return True

    def _heartbeat(self, ctx: JobContext, stop: threading.Event) -> None:
        while not stop.wait(self.config.heartbeat_interval_s):
            try:
                ctx.control = self.store.heartbeat(ctx.job.id, self.worker_id)
            except (Conflict, NotFound):
                ctx.lost = True
                return
            except Exception:
                log.exception("heartbeat failed", extra={"job_id": ctx.job.id})

    def _execute(self, ctx: JobContext) -> None:
        job = ctx.job
        handler = self.handlers[job.kind]
        extra = {"job_id": job.id, "kind": job.kind, "attempt": job.attempts}
        log.info("job started", extra=extra)
        try:
            ctx.check_control()
            result = handler(ctx)
        except JobPaused as e:
            self._finish(ctx, JobStatus.PAUSED, error=None, note=str(e))
        except JobCancelled:
            self._finish(ctx, JobStatus.CANCELLED)
            shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
        except JobInterrupted:
            log.warning("job taken from this worker; dropping its result", extra=extra)
        except LearnloopError as e:
            log.warning("job failed", exc_info=True, extra=extra)
            self._finish(ctx, JobStatus.FAILED, error=str(e), tb=traceback.format_exc())
        except Exception as e:
            log.error("job error", exc_info=True, extra=extra)  # clients see the message only
            retry = job.attempts < job.max_attempts
            status = JobStatus.QUEUED if retry else JobStatus.FAILED
            msg = f"{type(e).__name__}: {e}" + (" (will retry)" if retry else "")
            self._finish(ctx, status, error=msg, tb=traceback.format_exc())
        else:
            self._finish(ctx, JobStatus.SUCCEEDED, result=dict(result or {}))
            shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
        log.info("job ended", extra=extra)

    def _finish(
        self,
        ctx: JobContext,
        status: JobStatus,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        tb: str | None = None,
        note: str | None = None,
    ) -> None:
        try:
            self.store.finish(
                ctx.job.id, self.worker_id, status, result=result, error=error, traceback=tb
            )
            if note:
                ctx.log(note)
        except (Conflict, NotFound):
            log.warning("job no longer ours at finish", extra={"job_id": ctx.job.id})
