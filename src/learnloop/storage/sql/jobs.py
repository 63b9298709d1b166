"""SqlJobStore: the durable job queue on SQLite or PostgreSQL.

Claiming is safe across processes: on SQLite the claim runs in a ``BEGIN IMMEDIATE``
transaction (one writer at a time); on PostgreSQL it selects with ``FOR UPDATE SKIP LOCKED``, so
concurrent workers never wait on, or take, the same row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from learnloop.core.errors import Conflict, NotFound
from learnloop.core.ids import new_id
from learnloop.core.records import JobControl, JobEvent, JobRecord, JobStatus, WorkerRecord
from learnloop.storage.sql.database import Database
from learnloop.storage.sql.tables import JobEventRow, JobRow, WorkerRow, utcnow


def _job(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        payload=dict(row.payload),
        status=JobStatus(row.status),
        priority=row.priority,
        progress=row.progress,
        message=row.message,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        submitted_by=row.submitted_by,
        control=JobControl(row.control) if row.control else None,
        worker_id=row.worker_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        result=row.result,
        error=row.error,
        traceback=row.traceback,
    )


class SqlJobStore:
    """:class:`~learnloop.core.stores.JobStore` on a :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def submit(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        priority: int = 0,
        max_attempts: int = 3,
        submitted_by: str = "",
    ) -> JobRecord:
        now = utcnow()
        row = JobRow(
            id=new_id(),
            kind=kind,
            payload=dict(payload),
            status=JobStatus.QUEUED.value,
            priority=priority,
            progress=0.0,
            message="queued",
            attempts=0,
            max_attempts=max_attempts,
            submitted_by=submitted_by,
            created_at=now,
            updated_at=now,
            event_seq=0,
        )
        with self.db.write() as s:
            s.add(row)
            s.flush()
            self._event(s, row.id, "status", "queued")
        return _job(row)

    def get(self, job_id: str) -> JobRecord | None:
        with self.db.read() as s:
            row = s.get(JobRow, job_id)
            return _job(row) if row else None

    def list(
        self, *, status: JobStatus | None = None, kind: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        q = sa.select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        if status is not None:
            q = q.where(JobRow.status == status.value)
        if kind is not None:
            q = q.where(JobRow.kind == kind)
        with self.db.read() as s:
            return [_job(r) for r in s.scalars(q)]

    def claim(self, worker_id: str, kinds: Sequence[str]) -> JobRecord | None:
        q = (
            sa.select(JobRow)
            .where(JobRow.status == JobStatus.QUEUED.value, JobRow.kind.in_(list(kinds)))
            .order_by(JobRow.priority.desc(), JobRow.created_at, JobRow.id)
            .limit(1)
        )
        if not self.db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        with self.db.write() as s:
            row = s.scalars(q).first()
            if row is None:
                return None
            now = utcnow()
            row.status = JobStatus.RUNNING.value
            row.worker_id = worker_id
            row.attempts += 1
            row.started_at = row.started_at or now
            row.heartbeat_at = now
            row.updated_at = now
            row.message = f"running (attempt {row.attempts})"
            self._event(s, row.id, "status", f"running on {worker_id} (attempt {row.attempts})")
            return _job(row)

    def heartbeat(self, job_id: str, worker_id: str) -> JobControl | None:
        with self.db.write() as s:
            row = self._running(s, job_id, worker_id)
            row.heartbeat_at = utcnow()
            return JobControl(row.control) if row.control else None

    def report(
        self,
        job_id: str,
        *,
        fraction: float | None,
        message: str,
        metrics: Mapping[str, float] | None = None,
        kind: str = "progress",
    ) -> None:
        with self.db.write() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound("job", job_id)
            if kind == "progress":
                if fraction is not None:
                    row.progress = min(max(float(fraction), 0.0), 1.0)
                row.message = message
                row.updated_at = utcnow()
            self._event(s, job_id, kind, message, fraction, metrics)

    def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        traceback: str | None = None,
    ) -> JobRecord:
        with self.db.write() as s:
            row = self._running(s, job_id, worker_id)
            now = utcnow()
            row.status = status.value
            row.updated_at = now
            row.control = None
            row.worker_id = None if status in (JobStatus.QUEUED, JobStatus.PAUSED) else worker_id
            if status.finished:
                row.finished_at = now
            if status is JobStatus.SUCCEEDED:
                row.progress = 1.0
            if status is JobStatus.PAUSED:
                row.attempts = max(0, row.attempts - 1)  # a pause is not a failed attempt
            row.result = dict(result) if result is not None else row.result
            row.error = error
            row.traceback = traceback
            row.message = error.splitlines()[0][:500] if error else status.value
            self._event(s, job_id, "status", row.message if error else status.value)
            return _job(row)

    def request_control(self, job_id: str, control: JobControl) -> JobRecord:
        with self.db.write() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound("job", job_id)
            status = JobStatus(row.status)
            if status.finished:
                raise Conflict(f"job {job_id} already {status.value}; cannot {control.value}")
            now = utcnow()
            if status is JobStatus.RUNNING:
                row.control = control.value
                self._event(s, job_id, "status", f"{control.value} requested")
            elif control is JobControl.CANCEL:
                row.status = JobStatus.CANCELLED.value
                row.finished_at = now
                row.message = "cancelled"
                self._event(s, job_id, "status", "cancelled")
            elif status is JobStatus.QUEUED:
                row.status = JobStatus.PAUSED.value
                row.message = "paused"
                self._event(s, job_id, "status", "paused")
            row.updated_at = now
            return _job(row)

    def resume(self, job_id: str) -> JobRecord:
        with self.db.write() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound("job", job_id)
            if row.status != JobStatus.PAUSED.value:
                raise Conflict(f"job {job_id} is {row.status}, not paused; cannot resume")
            row.status = JobStatus.QUEUED.value
            row.control = None
            row.message = "queued (resumed)"
            row.updated_at = utcnow()
            self._event(s, job_id, "status", "resumed")
            return _job(row)

    def requeue_stale(self, older_than: datetime) -> list[JobRecord]:
        q = sa.select(JobRow).where(
            JobRow.status == JobStatus.RUNNING.value, JobRow.heartbeat_at < older_than
        )
        if not self.db.is_sqlite:
            q = q.with_for_update(skip_locked=True)
        changed = []
        with self.db.write() as s:
            for row in s.scalars(q):
                now = utcnow()
                dead = row.worker_id
                row.worker_id = None
                row.updated_at = now
                if row.attempts >= row.max_attempts:
                    row.status = JobStatus.FAILED.value
                    row.finished_at = now
                    row.error = f"worker {dead} stopped responding; out of attempts"
                    row.message = row.error
                else:
                    row.status = JobStatus.QUEUED.value
                    row.message = f"re-queued: worker {dead} stopped responding"
                self._event(s, row.id, "status", row.message)
                changed.append(_job(row))
        return changed

    def events(self, job_id: str, after_seq: int = 0, limit: int = 1000) -> list[JobEvent]:
        q = (
            sa.select(JobEventRow)
            .where(JobEventRow.job_id == job_id, JobEventRow.seq > after_seq)
            .order_by(JobEventRow.seq)
            .limit(limit)
        )
        with self.db.read() as s:
            return [
                JobEvent(
                    job_id=r.job_id,
                    seq=r.seq,
                    at=r.at,
                    kind=r.kind,
                    message=r.message,
                    fraction=r.fraction,
                    metrics=dict(r.metrics or {}),
                )
                for r in s.scalars(q)
            ]

    def worker_beat(self, worker_id: str, host: str, pid: int) -> None:
        with self.db.write() as s:
            row = s.get(WorkerRow, worker_id)
            now = utcnow()
            if row is None:
                s.add(WorkerRow(id=worker_id, host=host, pid=pid, started_at=now, heartbeat_at=now))
            else:
                row.heartbeat_at = now

    def workers(self, alive_since: datetime) -> list[WorkerRecord]:
        q = sa.select(WorkerRow).where(WorkerRow.heartbeat_at >= alive_since)
        with self.db.read() as s:
            return [
                WorkerRecord(r.id, r.host, r.pid, r.started_at, r.heartbeat_at)
                for r in s.scalars(q)
            ]

    def worker_gone(self, worker_id: str) -> None:
        with self.db.write() as s:
            s.execute(sa.delete(WorkerRow).where(WorkerRow.id == worker_id))

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _running(s: Session, job_id: str, worker_id: str) -> JobRow:
        row = s.get(JobRow, job_id)
        if row is None:
            raise NotFound("job", job_id)
        if row.status != JobStatus.RUNNING.value or row.worker_id != worker_id:
            raise Conflict(f"job {job_id} is no longer running on worker {worker_id}")
        return row

    @staticmethod
    def _event(
        s: Session,
        job_id: str,
        kind: str,
        message: str,
        fraction: float | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        seq = s.execute(
            sa.update(JobRow)
            .where(JobRow.id == job_id)
            .values(event_seq=JobRow.event_seq + 1)
            .returning(JobRow.event_seq)
        ).scalar_one()
        s.add(
            JobEventRow(
                job_id=job_id,
                seq=seq,
                at=utcnow(),
                kind=kind,
                message=message,
                fraction=fraction,
                metrics={k: float(v) for k, v in (metrics or {}).items()} or None,
            )
        )


def count_jobs_by_status(store: SqlJobStore) -> dict[str, int]:
    """Job counts per status (for the Prometheus gauge)."""
    q = sa.select(JobRow.status, sa.func.count()).group_by(JobRow.status)
    with store.db.read() as s:
        return {str(status): int(n) for status, n in s.execute(q)}
